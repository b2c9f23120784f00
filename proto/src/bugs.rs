//! Planted bugs: switches that break one rule each, so the simulator can prove that its checks
//! catch that kind of bug. They exist only with the `bugs` feature, which only the simulator's
//! tests enable; without it every switch reads `false` and compiles away.

/// Which rules to break. All off by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Accept chunks without checking their hash.
    #[cfg(feature = "bugs")]
    pub skip_chunk_hash: bool,
    /// Never expire silent peers.
    #[cfg(feature = "bugs")]
    pub never_expire: bool,
    /// Ask to finish (rename into place) as soon as half the chunks are written.
    #[cfg(feature = "bugs")]
    pub finish_early: bool,
    /// Keep a failed peer's chunks assigned to it instead of giving them back.
    #[cfg(feature = "bugs")]
    pub keep_chunks_of_dead_peers: bool,
    /// Ask only the first holder for the manifest, and give up once it is banned.
    #[cfg(feature = "bugs")]
    pub one_manifest_source: bool,
    /// Take an answer (chunk, manifest, refusal) on any connection whose hello claimed the
    /// peer, not only on our own link to it.
    #[cfg(feature = "bugs")]
    pub answers_from_any_conn: bool,
    /// Never stop reading a connection (`NetOp::Pause`), whatever its budgets and queues say.
    #[cfg(feature = "bugs")]
    pub never_pause: bool,
    /// Never close a connection whose reader does not read (`CloseReason::NotReading`).
    #[cfg(feature = "bugs")]
    pub no_read_deadline: bool,
    /// Take any number of peer-table entries from one IP address.
    #[cfg(feature = "bugs")]
    pub no_table_cap_per_ip: bool,
    /// No delivery deadline for requests in flight: a holder that drips bytes keeps them.
    #[cfg(feature = "bugs")]
    pub no_request_deadline: bool,
    /// Claim (in bitfields) and serve chunks of a download in progress that are only asked
    /// for, not yet verified and written.
    #[cfg(feature = "bugs")]
    pub serve_unverified: bool,
    /// Never announce a verified chunk with a `Have`.
    #[cfg(feature = "bugs")]
    pub never_have: bool,
    /// Believe a discovery datagram whose mark is not newer than the one held (a replay).
    #[cfg(feature = "bugs")]
    pub accept_stale_mark: bool,
    /// Take the peer a connection's hello names without checking it against the key its
    /// handshake proved (and dial without expecting the key of the peer we meant to reach).
    #[cfg(feature = "bugs")]
    pub skip_identity_check: bool,
    /// A partial holder that refuses (busy, taken) or stalls a chunk it claimed loses nothing:
    /// no pause, no dropped claim, no strike; it is asked again at once.
    #[cfg(feature = "bugs")]
    pub no_claim_strike: bool,
    /// Skip a known peer's probe while its key is listed at all (heard by datagram, even one
    /// relayed), not only while a connection with it is open: a peer whose datagrams reach us
    /// but ours not it never lists us.
    #[cfg(feature = "bugs")]
    pub probe_only_unlisted: bool,
}

macro_rules! switch {
    ($name:ident) => {
        /// Whether this planted bug is on.
        #[inline]
        pub fn $name(&self) -> bool {
            #[cfg(feature = "bugs")]
            return self.$name;
            #[cfg(not(feature = "bugs"))]
            return false;
        }
    };
}

impl Bugs {
    switch!(skip_chunk_hash);
    switch!(serve_unverified);
    switch!(never_have);
    switch!(never_expire);
    switch!(finish_early);
    switch!(keep_chunks_of_dead_peers);
    switch!(one_manifest_source);
    switch!(answers_from_any_conn);
    switch!(never_pause);
    switch!(no_read_deadline);
    switch!(no_table_cap_per_ip);
    switch!(no_request_deadline);
    switch!(skip_identity_check);
    switch!(accept_stale_mark);
    switch!(no_claim_strike);
    switch!(probe_only_unlisted);
}

/// A planted misbehaviour of a whole node (simulator only): what it sends on a native
/// connection passes through this before it is sealed (the simulator's liars drop or falsify
/// answers this way, since nothing on the wire can once it is encrypted). Given the connection
/// and the plaintext of one send, it returns the plaintext to seal instead.
#[cfg(feature = "bugs")]
pub struct Tamper(pub Box<dyn FnMut(crate::session::ConnId, Vec<u8>) -> Vec<u8> + Send>);

#[cfg(feature = "bugs")]
impl std::fmt::Debug for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tamper(..)")
    }
}
