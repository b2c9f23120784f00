//! Other peers' catalogs: assembled page by page, kept within budgets.
//!
//! A catalog arrives as pages of one revision (page 0 first, then each next page asked for in
//! turn); it replaces the peer's previous catalog only once its last page arrived, so a view
//! never shows half a catalog. A page of another revision than the pages before it starts the
//! assembly again from page 0.
//!
//! Invariants: every stored name passed `check_name`; a peer's catalog lists at most
//! [`MAX_NAMES_PER_CONTENT`] names per content; the cost ([`entry_cost`]) of the catalogs from
//! one peer, from one IP address, and from all peers together stays within
//! [`CATALOG_PEER_BUDGET`], [`CATALOG_IP_BUDGET`] and [`CATALOG_NODE_BUDGET`] (pages in
//! assembly included). What does not fit is dropped and counted, never an error.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::budget::{
    CATALOG_IP_BUDGET, CATALOG_NODE_BUDGET, CATALOG_PEER_BUDGET, MAX_NAMES_PER_CONTENT, entry_cost,
};
use crate::ids::{ContentId, PeerId};
use crate::wire::CatalogEntry;

/// One peer's catalog.
#[derive(Debug, Default)]
struct Held {
    ip: Option<IpAddr>,
    /// Shared with the views handed out ([`Catalogs::shared`]): a view costs the loop a
    /// reference count per peer, never a copy of the entries.
    files: Arc<Vec<CatalogEntry>>,
    cost: usize,
}

/// A catalog being assembled.
#[derive(Debug)]
struct Assembly {
    revision: u64,
    next_page: u32,
    files: Vec<CatalogEntry>,
    names: BTreeMap<ContentId, usize>,
    cost: usize,
}

/// What to do after a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum PageVerdict {
    /// Ask for this page next.
    Next(u32),
    /// The catalog is complete and stored.
    Done,
    /// Out of order or of another revision: ask for page 0 again.
    Restart,
}

/// Every peer's catalog, and those being assembled.
#[derive(Debug, Default)]
pub(super) struct Catalogs {
    held: BTreeMap<PeerId, Held>,
    assembling: BTreeMap<PeerId, Assembly>,
    /// Entries dropped for a budget (names per content, or memory).
    pub(super) dropped: u64,
}

impl Catalogs {
    /// The complete catalog of `peer`, if one arrived.
    pub(super) fn get(&self, peer: &PeerId) -> Option<&[CatalogEntry]> {
        self.held.get(peer).map(|h| &h.files[..])
    }

    /// Every complete catalog.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&PeerId, &[CatalogEntry])> {
        self.held.iter().map(|(p, h)| (p, &h.files[..]))
    }

    /// Every complete catalog, shared: what a view takes away to be grouped on another thread.
    pub(super) fn shared(&self) -> Vec<(PeerId, Arc<Vec<CatalogEntry>>)> {
        self.held
            .iter()
            .map(|(p, h)| (*p, Arc::clone(&h.files)))
            .collect()
    }

    /// True once a complete catalog of `peer` arrived.
    pub(super) fn contains(&self, peer: &PeerId) -> bool {
        self.held.contains_key(peer)
    }

    /// Forgets `peer`'s catalog (it left), and any half-assembled one.
    pub(super) fn remove(&mut self, peer: &PeerId) {
        self.held.remove(peer);
        self.assembling.remove(peer);
    }

    /// Forgets a half-assembled catalog (its connection ended).
    pub(super) fn abandon(&mut self, peer: &PeerId) {
        self.assembling.remove(peer);
    }

    /// Memory held for peers other than `peer`: at `ip`, and in all.
    fn cost_beside(&self, peer: &PeerId, ip: IpAddr) -> (usize, usize) {
        let mut at_ip = 0;
        let mut all = 0;
        let held = self.held.iter().map(|(p, h)| (p, h.cost, h.ip));
        let asm = self.assembling.iter().map(|(p, a)| {
            let ip = self.held.get(p).and_then(|h| h.ip);
            (p, a.cost, ip)
        });
        for (p, cost, pip) in held.chain(asm) {
            if p == peer {
                continue;
            }
            all += cost;
            if pip == Some(ip) {
                at_ip += cost;
            }
        }
        (at_ip, all)
    }

    /// Adds page `page` of `pages` of `peer`'s catalog (revision `revision`), whose names
    /// already passed `check_name`; `ip` is the address it came from.
    pub(super) fn add_page(
        &mut self,
        peer: PeerId,
        ip: IpAddr,
        revision: u64,
        page: u32,
        pages: u32,
        files: Vec<CatalogEntry>,
    ) -> PageVerdict {
        if page == 0 {
            self.assembling.insert(
                peer,
                Assembly {
                    revision,
                    next_page: 0,
                    files: Vec::new(),
                    names: BTreeMap::new(),
                    cost: 0,
                },
            );
        }
        let (at_ip, all) = self.cost_beside(&peer, ip);
        let Some(a) = self.assembling.get_mut(&peer) else {
            return PageVerdict::Restart;
        };
        if a.revision != revision || a.next_page != page {
            self.assembling.remove(&peer);
            return PageVerdict::Restart;
        }
        // Room left for this peer: its own budget, and what its IP and the node have left
        // (its previous catalog is replaced, so it does not count).
        let room = CATALOG_PEER_BUDGET
            .min(CATALOG_IP_BUDGET.saturating_sub(at_ip))
            .min(CATALOG_NODE_BUDGET.saturating_sub(all));
        for f in files {
            let names = a.names.entry(f.content).or_default();
            let cost = entry_cost(&f);
            if *names >= MAX_NAMES_PER_CONTENT || a.cost + cost > room {
                self.dropped += 1;
                continue;
            }
            *names += 1;
            a.cost += cost;
            a.files.push(f);
        }
        a.next_page = page + 1;
        if a.next_page < pages && a.cost < room {
            return PageVerdict::Next(a.next_page);
        }
        if let Some(mut a) = self.assembling.remove(&peer) {
            // Kept for as long as the peer is: without the slack of a vector grown by pushes.
            a.files.shrink_to_fit();
            self.held.insert(
                peer,
                Held {
                    ip: Some(ip),
                    files: Arc::new(a.files),
                    cost: a.cost,
                },
            );
        }
        PageVerdict::Done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, content: u8) -> CatalogEntry {
        CatalogEntry {
            name: name.into(),
            size: 1,
            content: ContentId([content; 32]),
            partial: false,
        }
    }

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));

    #[test]
    fn a_view_shares_the_catalogs_it_shows() {
        let mut c = Catalogs::default();
        let p = PeerId([1; 16]);
        let files: Vec<_> = (0..200u8).map(|i| entry(&format!("f{i}"), i)).collect();
        assert_eq!(c.add_page(p, IP, 1, 0, 1, files), PageVerdict::Done);
        let (a, b) = (c.shared(), c.shared());
        assert_eq!(a.len(), 1);
        // The same entries, not a copy: a view costs the loop a count per peer.
        assert!(Arc::ptr_eq(&a[0].1, &b[0].1));
        assert_eq!(a[0].1.len(), c.get(&p).map_or(0, <[_]>::len));
        // A view taken before the next catalog keeps the old one; the table holds the new.
        assert_eq!(
            c.add_page(p, IP, 2, 0, 1, vec![entry("g", 2)]),
            PageVerdict::Done
        );
        assert_eq!(a[0].1.len(), 200);
        assert_eq!(c.get(&p).map(<[_]>::len), Some(1));
    }

    #[test]
    fn pages_make_one_catalog_only_when_the_last_arrived() {
        let mut c = Catalogs::default();
        let p = PeerId([1; 16]);
        assert_eq!(
            c.add_page(p, IP, 7, 0, 2, vec![entry("a", 1)]),
            PageVerdict::Next(1)
        );
        assert!(!c.contains(&p), "half a catalog is not shown");
        assert_eq!(
            c.add_page(p, IP, 7, 1, 2, vec![entry("b", 2)]),
            PageVerdict::Done
        );
        assert_eq!(c.get(&p).map(<[_]>::len), Some(2));
        // A page of another revision restarts.
        assert_eq!(c.add_page(p, IP, 8, 0, 2, vec![]), PageVerdict::Next(1));
        assert_eq!(c.add_page(p, IP, 9, 1, 2, vec![]), PageVerdict::Restart);
        assert_eq!(c.get(&p).map(<[_]>::len), Some(2), "the old one stays");
    }

    #[test]
    fn names_per_content_and_memory_are_bounded() {
        let mut c = Catalogs::default();
        let p = PeerId([1; 16]);
        let many: Vec<_> = (0..100).map(|i| entry(&format!("n{i}"), 1)).collect();
        assert_eq!(c.add_page(p, IP, 1, 0, 1, many), PageVerdict::Done);
        assert_eq!(c.get(&p).map(<[_]>::len), Some(MAX_NAMES_PER_CONTENT));
        assert_eq!(c.dropped, 100 - MAX_NAMES_PER_CONTENT as u64);
        // Peers at one IP share one budget.
        let big = "x".repeat(200);
        let per_peer = CATALOG_IP_BUDGET / entry_cost(&entry(&big, 0));
        let files = |k: u8| -> Vec<CatalogEntry> {
            (0..per_peer)
                .map(|i| {
                    let mut id = [k; 32];
                    id[..8].copy_from_slice(&(i as u64).to_be_bytes());
                    CatalogEntry {
                        name: format!("{big}{i}"),
                        size: 1,
                        content: ContentId(id),
                        partial: false,
                    }
                })
                .collect()
        };
        let mut total = 0;
        for k in 2..6u8 {
            let q = PeerId([k; 16]);
            let _ = c.add_page(q, IP, 1, 0, 1, files(k));
            total += c.held.get(&q).map_or(0, |h| h.cost);
        }
        assert!(total <= CATALOG_IP_BUDGET, "{total} over the IP budget");
    }
}
