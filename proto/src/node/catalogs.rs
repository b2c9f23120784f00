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
//! [`CATALOG_PEER_BUDGET`], [`CATALOG_IP_BUDGET`] and [`CATALOG_NODE_BUDGET`], pages in
//! assembly included from the first entry of a peer's first catalog (charged to the address
//! the pages came from; issue 27, item 4: six fresh ids from one address, each holding back
//! its last page, held the whole node budget). The costs per address and in all are kept as
//! running sums (`ip_cost`, `total`), so a page costs its entries, not a walk of every peer.
//! What does not fit is dropped and counted, never an error. A complete catalog has a name
//! index ([`Catalogs::named`]): a lookup by name is a binary search.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;

use crate::budget::{
    CATALOG_IP_BUDGET, CATALOG_NODE_BUDGET, CATALOG_PEER_BUDGET, MAX_NAMES_PER_CONTENT, entry_cost,
};
use crate::ids::PeerId;
use crate::wire::CatalogEntry;

/// One peer's catalog.
#[derive(Debug)]
struct Held {
    ip: IpAddr,
    /// Shared with the views handed out ([`Catalogs::shared`]): a view costs the loop a
    /// reference count per peer, never a copy of the entries.
    files: Arc<Vec<CatalogEntry>>,
    /// Positions in `files`, sorted by name.
    by_name: Vec<u32>,
    cost: usize,
}

/// A catalog being assembled.
#[derive(Debug)]
struct Assembly {
    ip: IpAddr,
    revision: u64,
    next_page: u32,
    files: Vec<CatalogEntry>,
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
    /// Cost held and in assembly, per address the pages came from.
    ip_cost: BTreeMap<IpAddr, usize>,
    /// Cost held and in assembly, in all.
    total: usize,
    /// Entries dropped for a budget (names per content, or memory).
    pub(super) dropped: u64,
}

/// The positions, ascending, of the entries past the [`MAX_NAMES_PER_CONTENT`]th name of
/// their content (in catalog order): what a complete catalog drops.
fn names_over(files: &[CatalogEntry]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..files.len() as u32).collect();
    order.sort_by_key(|&i| (files[i as usize].content, i));
    let mut extra = Vec::new();
    let mut run = 0;
    for (k, &i) in order.iter().enumerate() {
        let same = k > 0 && files[order[k - 1] as usize].content == files[i as usize].content;
        run = if same { run + 1 } else { 1 };
        if run > MAX_NAMES_PER_CONTENT {
            extra.push(i);
        }
    }
    extra.sort_unstable();
    extra
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

    /// The entries of `peer`'s complete catalog named `name`: a binary search.
    pub(super) fn named<'a>(
        &'a self,
        peer: &PeerId,
        name: &'a str,
    ) -> impl Iterator<Item = &'a CatalogEntry> + 'a {
        let held = self.held.get(peer);
        let (files, idx): (&[CatalogEntry], &[u32]) =
            held.map_or((&[], &[]), |h| (h.files.as_slice(), h.by_name.as_slice()));
        let at = |i: &u32| files[*i as usize].name.as_str();
        let start = idx.partition_point(|i| at(i) < name);
        idx[start..]
            .iter()
            .take_while(move |i| at(i) == name)
            .map(move |i| &files[*i as usize])
    }

    fn charge(&mut self, ip: IpAddr, cost: usize) {
        *self.ip_cost.entry(ip).or_default() += cost;
        self.total += cost;
    }

    fn refund(&mut self, ip: IpAddr, cost: usize) {
        if let Some(c) = self.ip_cost.get_mut(&ip) {
            *c = c.saturating_sub(cost);
            if *c == 0 {
                self.ip_cost.remove(&ip);
            }
        }
        self.total = self.total.saturating_sub(cost);
    }

    fn drop_held(&mut self, peer: &PeerId) {
        if let Some(h) = self.held.remove(peer) {
            self.refund(h.ip, h.cost);
        }
    }

    /// Forgets a half-assembled catalog (its connection ended).
    pub(super) fn abandon(&mut self, peer: &PeerId) {
        if let Some(a) = self.assembling.remove(peer) {
            self.refund(a.ip, a.cost);
        }
    }

    /// Forgets `peer`'s catalog (it left), and any half-assembled one.
    pub(super) fn remove(&mut self, peer: &PeerId) {
        self.drop_held(peer);
        self.abandon(peer);
    }

    /// Memory held for peers other than `peer`: at `ip`, and in all.
    fn cost_beside(&self, peer: &PeerId, ip: IpAddr) -> (usize, usize) {
        let mut at_ip = self.ip_cost.get(&ip).copied().unwrap_or(0);
        let mut all = self.total;
        let held = self.held.get(peer).map(|h| (h.ip, h.cost));
        let asm = self.assembling.get(peer).map(|a| (a.ip, a.cost));
        for (pip, cost) in held.into_iter().chain(asm) {
            all = all.saturating_sub(cost);
            if pip == ip {
                at_ip = at_ip.saturating_sub(cost);
            }
        }
        (at_ip, all)
    }

    /// Adds page `page` of `pages` of `peer`'s catalog (revision `revision`); `ip` is the
    /// address it came from. Only the entries that fit the budgets have their names checked
    /// (`check_name`; those that fail are counted in `bad_names`): a page past its budget
    /// costs its decoding, not a check of every name.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn add_page(
        &mut self,
        peer: PeerId,
        ip: IpAddr,
        revision: u64,
        page: u32,
        pages: u32,
        files: Vec<CatalogEntry>,
        bad_names: &mut u64,
    ) -> PageVerdict {
        if page == 0 {
            self.abandon(&peer);
            self.assembling.insert(
                peer,
                Assembly {
                    ip,
                    revision,
                    next_page: 0,
                    files: Vec::new(),
                    cost: 0,
                },
            );
        }
        let (at_ip, all) = self.cost_beside(&peer, ip);
        let Some(a) = self.assembling.get_mut(&peer) else {
            return PageVerdict::Restart;
        };
        if a.revision != revision || a.next_page != page || a.ip != ip {
            self.abandon(&peer);
            return PageVerdict::Restart;
        }
        // Room left for this peer: its own budget, and what its IP and the node have left
        // (its previous catalog is replaced, so it does not count).
        let room = CATALOG_PEER_BUDGET
            .min(CATALOG_IP_BUDGET.saturating_sub(at_ip))
            .min(CATALOG_NODE_BUDGET.saturating_sub(all));
        let before = a.cost;
        // Grown by what arrives, not doubled: the memory is what the budget says.
        a.files.reserve_exact(files.len());
        let mut full = false;
        for f in files {
            let cost = entry_cost(&f);
            if full || a.cost + cost > room {
                // Past the budget: the rest of the page, and the pages after it, are not
                // wanted (they would cost their transfer and decoding for nothing).
                full = true;
                self.dropped += 1;
                continue;
            }
            if crate::name::check_name(&f.name).is_err() {
                *bad_names += 1;
                continue;
            }
            a.cost += cost;
            a.files.push(f);
        }
        let added = a.cost - before;
        a.next_page = page + 1;
        let more = a.next_page < pages && !full;
        self.charge(ip, added);
        if more {
            return PageVerdict::Next(page + 1);
        }
        if let Some(mut a) = self.assembling.remove(&peer) {
            // Its cost moves from the assembly to the catalog; the old catalog goes.
            self.drop_held(&peer);
            let extra = names_over(&a.files);
            if !extra.is_empty() {
                let mut cut = 0;
                let mut k = 0;
                a.files.retain(|_| {
                    let keep = extra.get(cut) != Some(&k);
                    if !keep {
                        cut += 1;
                    }
                    k += 1;
                    keep
                });
                self.dropped += extra.len() as u64;
                let cost: usize = a.files.iter().map(entry_cost).sum();
                self.refund(a.ip, a.cost - cost);
                a.cost = cost;
            }
            a.files.shrink_to_fit();
            let mut by_name: Vec<u32> = (0..a.files.len() as u32).collect();
            by_name.sort_by(|x, y| a.files[*x as usize].name.cmp(&a.files[*y as usize].name));
            self.held.insert(
                peer,
                Held {
                    ip: a.ip,
                    files: Arc::new(a.files),
                    by_name,
                    cost: a.cost,
                },
            );
        }
        PageVerdict::Done
    }

    /// Checks that the running sums are the sums (tests).
    #[cfg(test)]
    fn check_sums(&self) {
        let mut ip_cost: BTreeMap<IpAddr, usize> = BTreeMap::new();
        let held = self.held.values().map(|h| (h.ip, h.cost));
        let asm = self.assembling.values().map(|a| (a.ip, a.cost));
        for (ip, c) in held.chain(asm) {
            if c > 0 {
                *ip_cost.entry(ip).or_default() += c;
            }
        }
        assert_eq!(ip_cost, self.ip_cost);
        assert_eq!(ip_cost.values().sum::<usize>(), self.total);
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::ids::ContentId;

    /// A complete catalog entry of size 1 (also for the views' tests).
    pub(in crate::node) fn entry(name: &str, content: u8) -> CatalogEntry {
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
        let p = PeerId([1; 32]);
        let files: Vec<_> = (0..200u8).map(|i| entry(&format!("f{i}"), i)).collect();
        assert_eq!(c.add_page(p, IP, 1, 0, 1, files, &mut 0), PageVerdict::Done);
        let (a, b) = (c.shared(), c.shared());
        assert_eq!(a.len(), 1);
        // The same entries, not a copy: a view costs the loop a count per peer.
        assert!(Arc::ptr_eq(&a[0].1, &b[0].1));
        assert_eq!(a[0].1.len(), c.get(&p).map_or(0, <[_]>::len));
        // A view taken before the next catalog keeps the old one; the table holds the new.
        assert_eq!(
            c.add_page(p, IP, 2, 0, 1, vec![entry("g", 2)], &mut 0),
            PageVerdict::Done
        );
        assert_eq!(a[0].1.len(), 200);
        assert_eq!(c.get(&p).map(<[_]>::len), Some(1));
    }

    #[test]
    fn pages_make_one_catalog_only_when_the_last_arrived() {
        let mut c = Catalogs::default();
        let p = PeerId([1; 32]);
        assert_eq!(
            c.add_page(p, IP, 7, 0, 2, vec![entry("a", 1)], &mut 0),
            PageVerdict::Next(1)
        );
        assert!(!c.contains(&p), "half a catalog is not shown");
        assert_eq!(
            c.add_page(p, IP, 7, 1, 2, vec![entry("b", 2)], &mut 0),
            PageVerdict::Done
        );
        assert_eq!(c.get(&p).map(<[_]>::len), Some(2));
        // A page of another revision restarts.
        assert_eq!(
            c.add_page(p, IP, 8, 0, 2, vec![], &mut 0),
            PageVerdict::Next(1)
        );
        assert_eq!(
            c.add_page(p, IP, 9, 1, 2, vec![], &mut 0),
            PageVerdict::Restart
        );
        assert_eq!(c.get(&p).map(<[_]>::len), Some(2), "the old one stays");
    }

    #[test]
    fn names_per_content_and_memory_are_bounded() {
        let mut c = Catalogs::default();
        let p = PeerId([1; 32]);
        let many: Vec<_> = (0..100).map(|i| entry(&format!("n{i}"), 1)).collect();
        assert_eq!(c.add_page(p, IP, 1, 0, 1, many, &mut 0), PageVerdict::Done);
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
            let q = PeerId([k; 32]);
            let _ = c.add_page(q, IP, 1, 0, 1, files(k), &mut 0);
            total += c.held.get(&q).map_or(0, |h| h.cost);
        }
        assert!(total <= CATALOG_IP_BUDGET, "{total} over the IP budget");
        c.check_sums();
    }

    #[test]
    fn first_catalogs_in_assembly_count_against_their_address() {
        // Issue 27, item 4: fresh ids at one address, each holding back its last page.
        let mut c = Catalogs::default();
        let big = "y".repeat(200);
        let per_page = 1000;
        let page = |k: u8, n: usize| -> Vec<CatalogEntry> {
            (0..per_page)
                .map(|i| {
                    let mut id = [k; 32];
                    id[..8].copy_from_slice(&((n * per_page + i) as u64).to_be_bytes());
                    CatalogEntry {
                        name: format!("{big}{n}-{i}"),
                        size: 1,
                        content: ContentId(id),
                        partial: false,
                    }
                })
                .collect()
        };
        let mut pages_taken = 0;
        for k in 10..16u8 {
            let q = PeerId([k; 32]);
            for n in 0..100 {
                pages_taken += 1;
                match c.add_page(q, IP, 1, n as u32, 1000, page(k, n), &mut 0) {
                    PageVerdict::Next(_) => {}
                    _ => break,
                }
            }
        }
        // A page that did not fit ends the assembly: the address's budget, then one page for
        // each id after it, not every page each of them offers.
        let fit = CATALOG_IP_BUDGET / (per_page * (big.len() + 134)) + 1;
        assert!(
            pages_taken <= fit + 6,
            "{pages_taken} pages asked for (budget: {fit})"
        );
        c.check_sums();
        assert!(
            c.ip_cost[&IP] <= CATALOG_IP_BUDGET,
            "{} held in assembly at one address",
            c.ip_cost[&IP]
        );
        // An honest peer elsewhere still gets its whole catalog, with a name index.
        let other = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));
        let h = PeerId([1; 32]);
        assert_eq!(
            c.add_page(
                h,
                other,
                1,
                0,
                1,
                vec![entry("b", 1), entry("a", 2), entry("b", 3)],
                &mut 0
            ),
            PageVerdict::Done
        );
        assert_eq!(c.named(&h, "b").count(), 2);
        assert_eq!(
            c.named(&h, "a").map(|e| e.content).collect::<Vec<_>>(),
            [ContentId([2; 32])]
        );
        assert_eq!(c.named(&h, "c").count(), 0);
        for k in 10..16u8 {
            c.remove(&PeerId([k; 32]));
        }
        c.remove(&h);
        c.check_sums();
        assert_eq!(c.total, 0);
    }
}
