//! DNS discovery (EIP-1459) over real DNS: a TXT resolver ([`DnsResolver`], hickory-resolver
//! on this runtime) and the loop that runs the core's [`devp2p_core::dnsdisc::Client`] with it
//! ([`sync_tree`]). The protocol — what to ask, what to trust, when to ask again — is the
//! core's; this module only resolves the names the client asks for and hands back what the
//! DNS said.
//!
//! A node walks its trees (`config.node.dns`) by itself: the node task resolves the names
//! its node asks for with the resolver [`DriverConfig::dns_resolver`](crate::DriverConfig)
//! names, each lookup in a task of its own; nothing here is needed for that.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use devp2p_tokio::dns::{sync_tree, DnsResolver};
//! use devp2p_core::dnsdisc::ClientConfig;
//! let resolver = DnsResolver::system()?;
//! let url = "enrtree://AKA3AM6LPBYEUDMVNU3BSVQJ5AD45Y7YPOHJLEF6W26QOE4VTUDPE@all.mainnet.ethdisco.net"
//!     .parse()?;
//! let synced = sync_tree(&resolver, url, ClientConfig::default()).await?;
//! println!("{} nodes", synced.tree.records().len());
//! # Ok(()) }
//! ```

use devp2p_core::dnsdisc::{
    Client, ClientConfig, DnsError, Event, NameError, ResolveError, SyncedTree, TreeUrl,
};
use devp2p_core::Instant as CoreInstant;
pub use devp2p_mio::common::dns::{DnsResolver, DnsResolverConfig, MAX_DNS_SERVERS};
use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha20Rng;

/// Syncs the whole tree at `url` (root, links, records) with `resolver`, one lookup at a
/// time, as `devp2p dns sync` does; the first failure ends it, naming the name and what was
/// wrong with it.
pub async fn sync_tree(
    resolver: &DnsResolver,
    url: TreeUrl,
    config: ClientConfig,
) -> Result<SyncedTree, NameError> {
    let start = tokio::time::Instant::now();
    let now = || CoreInstant::from_millis(start.elapsed().as_millis() as u64);
    let until = |t: CoreInstant| {
        std::time::Duration::from_millis(t.as_millis().saturating_sub(now().as_millis()))
    };
    let mut client = Client::new(config, ChaCha20Rng::seed_from_u64(0));
    let id = client.sync_tree(now(), url.clone());
    loop {
        if let Some(q) = client.poll_query() {
            let lookup = resolver.lookup_txt(&q.name);
            let answer = match client.poll_timeout() {
                Some(d) => tokio::time::timeout(until(d), lookup)
                    .await
                    .unwrap_or(Err(ResolveError::Timeout)),
                None => lookup.await,
            };
            client.handle_answer(now(), q.id, answer);
            continue;
        }
        while let Some(e) = client.poll_event() {
            if let Event::Synced { id: done, result } = e {
                if done == id {
                    return result;
                }
            }
        }
        let Some(t) = client.poll_timeout() else {
            // Every lookup of a sync has a deadline, so this cannot happen; say so rather
            // than wait for ever.
            return Err(NameError {
                name: url.domain().to_owned(),
                tree: url,
                error: DnsError::Resolve(ResolveError::Failed(
                    "the sync stopped without a result (a bug in devp2p-core)".into(),
                )),
                kind: None,
            });
        };
        tokio::time::sleep(until(t)).await;
        client.handle_timeout(now());
    }
}
