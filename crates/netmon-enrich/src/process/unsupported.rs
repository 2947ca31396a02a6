//! Platforms without process attribution: the same API, every answer "not supported".

use std::net::SocketAddr;

use super::{
    Attribution, ProcessError, Proto, ResolverConfig, ResolverStats, SocketEntry, Unattributed,
};

/// A resolver that resolves nothing.
#[derive(Debug)]
pub(super) struct Resolver {
    stats: ResolverStats,
}

impl Resolver {
    pub(super) fn new(_config: ResolverConfig) -> Resolver {
        Resolver {
            stats: ResolverStats::default(),
        }
    }

    pub(super) fn stats(&self) -> ResolverStats {
        self.stats
    }

    pub(super) fn lookup(&mut self, _: Proto, _: SocketAddr, _: SocketAddr) -> Attribution {
        self.stats.lookups += 1;
        Attribution::Unattributed(Unattributed::NotSupported)
    }

    pub(super) fn lookup_flow(&mut self, p: Proto, s: SocketAddr, d: SocketAddr) -> Attribution {
        self.lookup(p, s, d)
    }

    pub(super) fn sockets(&mut self) -> Result<Vec<SocketEntry>, ProcessError> {
        Err(ProcessError::NotSupported)
    }
}
