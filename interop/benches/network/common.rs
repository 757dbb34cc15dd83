//! What the benches that build networks of node processes (`kad_network`, `gossip`) share:
//! which implementation a node runs, the fixed bootstrap graph, and the quantiles of the
//! report.

/// The implementation a network runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imp {
    /// `lp2p-node`.
    Lp2p,
    /// `rust-libp2p-node` (rust-libp2p 0.57).
    Rust,
}

impl Imp {
    /// The name the report prints.
    pub fn name(self) -> &'static str {
        match self {
            Imp::Lp2p => "lp2p",
            Imp::Rust => "rust-libp2p",
        }
    }
}

/// splitmix64: a small, fixed pseudo-random sequence (the benches need no better).
pub struct Rng(pub u64);

impl Rng {
    /// The next number of the sequence.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The graph of `nodes` nodes: for each node, the earlier nodes it bootstraps from (up to
/// `peers`, fewer for the first nodes), picked from `seed`, so both networks of a run, and
/// every run, have the same graph.
pub fn graph(nodes: usize, peers: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = Rng(seed);
    (0..nodes)
        .map(|i| {
            let mut picked: Vec<usize> = Vec::new();
            while picked.len() < peers.min(i) {
                let j = rng.below(i);
                if !picked.contains(&j) {
                    picked.push(j);
                }
            }
            picked
        })
        .collect()
}

/// The `p` quantile (0..=1) of `values`, nearest rank; NaN if empty.
pub fn quantile(values: &[f64], p: f64) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
