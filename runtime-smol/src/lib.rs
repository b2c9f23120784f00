//! placeholder until the smol runtime lands
use p2pshare_host::{Handle, PeerConfig, StartError};
/// Starts a peer on smol.
pub fn start(_cfg: &PeerConfig) -> Result<Handle, StartError> {
    Err(StartError::Bind("the smol runtime is not built yet".into()))
}
