//! Protocol hierarchy totals, like `tshark -q -z io,phs`: a tree of frames and wire bytes by
//! protocol path.
//!
//! Every frame counts once at every node on its path (`eth`, `eth/ipv4`, `eth/ipv4/tcp`, ...),
//! so a node's frames are at least the sum of its children's; the difference is frames that
//! ended there. Children keep the order in which they were first seen (as tshark does), which is
//! deterministic for a given input.
//!
//! How the tree relates to tshark's: tshark's root is `frame` and it names more layers —
//! `ethertype` between `eth` and the network layer, `data`, and every dissected application
//! protocol. netmon names the layers `netmon-packet` parses (`eth`, `vlan`, `ipv4`/`ipv6`,
//! `tcp`/`udp`/...), plus the application the classifier names. Mapping tshark's `ip` to `ipv4`
//! and dropping `ethertype`, the counts agree for the link, network and transport levels (the
//! crate's tests check this on corpus captures).

use core::fmt::{self, Write as _};

use serde::Serialize;

/// The protocol hierarchy tree, bounded to a number of nodes.
#[derive(Clone, Debug)]
pub struct Hierarchy {
    nodes: Vec<Node>,
    max_nodes: usize,
    overflow_frames: u64,
}

#[derive(Clone, Debug)]
struct Node {
    name: &'static str,
    frames: u64,
    bytes: u64,
    children: Vec<u32>,
}

/// One node of the tree, owned (for reports and JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HierarchyNode {
    /// Layer name.
    pub protocol: String,
    /// Frames whose path passes through this node.
    pub frames: u64,
    /// Their wire bytes.
    pub bytes: u64,
    /// Inner layers, in order of first appearance.
    pub children: Vec<HierarchyNode>,
}

impl Hierarchy {
    /// An empty tree holding at most `max_nodes` protocol nodes.
    pub fn new(max_nodes: usize) -> Hierarchy {
        Hierarchy {
            nodes: vec![Node {
                name: "frame",
                frames: 0,
                bytes: 0,
                children: Vec::new(),
            }],
            max_nodes: max_nodes.max(1),
            overflow_frames: 0,
        }
    }

    /// Counts one frame of `bytes` wire bytes with the given stack (outermost first).
    /// Allocates only when a path is seen for the first time.
    pub fn add(&mut self, layers: &[&'static str], bytes: u64) {
        self.add_frames(layers, 1, bytes);
    }

    /// Counts `frames` frames of `bytes` wire bytes in all with the given stack: the same as
    /// `frames` calls of [`Hierarchy::add`] whose bytes add up to `bytes`.
    pub fn add_frames(&mut self, layers: &[&'static str], frames: u64, bytes: u64) {
        if frames == 0 {
            return;
        }
        let mut cur = 0usize;
        if let Some(root) = self.nodes.get_mut(0) {
            root.frames += frames;
            root.bytes = root.bytes.saturating_add(bytes);
        }
        for &name in layers {
            let Some(node) = self.nodes.get(cur) else {
                return;
            };
            // Layer names are mostly the parsers' `&'static str` constants: look for the same
            // pointer first, then compare the text (a level has up to a few dozen children,
            // and at most one of them bears a name, so both finds agree).
            let child = |same: fn(&'static str, &'static str) -> bool| {
                node.children.iter().copied().find(|&c| {
                    self.nodes
                        .get(c as usize)
                        .is_some_and(|n| same(n.name, name))
                })
            };
            let found = child(|a, b| core::ptr::eq(a, b)).or_else(|| child(|a, b| a == b));
            let next = match found {
                Some(c) => c as usize,
                None => {
                    if self.nodes.len() > self.max_nodes {
                        self.overflow_frames += frames;
                        return;
                    }
                    let Ok(id) = u32::try_from(self.nodes.len()) else {
                        self.overflow_frames += frames;
                        return;
                    };
                    self.nodes.push(Node {
                        name,
                        frames: 0,
                        bytes: 0,
                        children: Vec::new(),
                    });
                    if let Some(p) = self.nodes.get_mut(cur) {
                        p.children.push(id);
                    }
                    id as usize
                }
            };
            if let Some(n) = self.nodes.get_mut(next) {
                n.frames += frames;
                n.bytes = n.bytes.saturating_add(bytes);
            }
            cur = next;
        }
    }

    /// Frames counted.
    pub fn frames(&self) -> u64 {
        self.nodes.first().map_or(0, |n| n.frames)
    }

    /// Wire bytes counted.
    pub fn bytes(&self) -> u64 {
        self.nodes.first().map_or(0, |n| n.bytes)
    }

    /// Frames whose path was cut because the tree was full.
    pub fn overflow_frames(&self) -> u64 {
        self.overflow_frames
    }

    /// The tree below the root, owned.
    pub fn tree(&self) -> Vec<HierarchyNode> {
        self.nodes
            .first()
            .map(|r| r.children.iter().filter_map(|&c| self.owned(c)).collect())
            .unwrap_or_default()
    }

    fn owned(&self, id: u32) -> Option<HierarchyNode> {
        let n = self.nodes.get(id as usize)?;
        Some(HierarchyNode {
            protocol: n.name.to_owned(),
            frames: n.frames,
            bytes: n.bytes,
            children: n.children.iter().filter_map(|&c| self.owned(c)).collect(),
        })
    }

    /// Depth-first rows `(depth, name, frames, bytes)`, depth 0 for the outermost layers.
    pub fn rows(&self) -> Vec<(usize, &'static str, u64, u64)> {
        let mut out = Vec::new();
        let mut stack: Vec<(usize, u32)> = Vec::new();
        if let Some(r) = self.nodes.first() {
            stack.extend(r.children.iter().rev().map(|&c| (0, c)));
        }
        while let Some((d, id)) = stack.pop() {
            if let Some(n) = self.nodes.get(id as usize) {
                out.push((d, n.name, n.frames, n.bytes));
                stack.extend(n.children.iter().rev().map(|&c| (d + 1, c)));
            }
        }
        out
    }

    /// Text in tshark's `io,phs` layout (two spaces of indent per level).
    pub fn render(&self) -> String {
        let mut s = String::new();
        let _ = self.write_text(&mut s);
        s
    }

    fn write_text(&self, s: &mut String) -> fmt::Result {
        writeln!(s, "{}", "=".repeat(67))?;
        writeln!(s, "Protocol Hierarchy Statistics")?;
        writeln!(s)?;
        for (d, name, frames, bytes) in self.rows() {
            let label = format!("{}{}", "  ".repeat(d), name);
            writeln!(s, "{label:<40} frames:{frames} bytes:{bytes}")?;
        }
        writeln!(s, "{}", "=".repeat(67))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name equal in text but at another address (built at run time, not a parser's
    /// constant) counts in the same node as the constant.
    #[test]
    fn names_match_by_text_not_address() {
        let mut h = Hierarchy::new(100);
        h.add(&["eth", "ipv4", "udp"], 10);
        h.add(&["eth", "ipv4", "tcp"], 20);
        let tcp: &'static str = String::from("tcp").leak();
        let eth: &'static str = String::from("eth").leak();
        assert!(!core::ptr::eq(tcp, "tcp"));
        h.add(&[eth, "ipv4", tcp], 30);
        h.add(&["eth", "ipv4", "tcp"], 40);
        assert_eq!(
            h.rows(),
            vec![
                (0, "eth", 4, 100),
                (1, "ipv4", 4, 100),
                (2, "udp", 1, 10),
                (2, "tcp", 3, 90),
            ]
        );
    }

    #[test]
    fn counts_each_level() {
        let mut h = Hierarchy::new(100);
        h.add(&["eth", "ipv4", "tcp", "tls"], 100);
        h.add(&["eth", "ipv4", "tcp"], 60);
        h.add(&["eth", "ipv4", "udp"], 80);
        h.add(&["eth", "arp"], 42);
        h.add(&[], 10);
        assert_eq!(h.frames(), 5);
        assert_eq!(h.bytes(), 292);
        assert_eq!(
            h.rows(),
            vec![
                (0, "eth", 4, 282),
                (1, "ipv4", 3, 240),
                (2, "tcp", 2, 160),
                (3, "tls", 1, 100),
                (2, "udp", 1, 80),
                (1, "arp", 1, 42),
            ]
        );
        let t = h.tree();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].children[0].children[0].protocol, "tcp");
        let text = h.render();
        assert!(text.contains("    tcp"), "{text}");
        assert!(text.contains("frames:2 bytes:160"), "{text}");
    }

    #[test]
    fn bounded() {
        let mut h = Hierarchy::new(3);
        h.add(&["a", "b", "c", "d", "e"], 1);
        h.add(&["x"], 1);
        assert!(h.rows().len() <= 4);
        assert_eq!(h.overflow_frames(), 2);
        assert_eq!(h.frames(), 2);
    }
}
