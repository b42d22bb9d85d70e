//! DNS discovery (EIP-1459) over real DNS: a TXT resolver ([`DnsResolver`], hickory-resolver
//! on this runtime) and the loop that runs the core's [`devp2p_core::dnsdisc::Client`] with it
//! ([`sync_tree`]). The protocol — what to ask, what to trust, when to ask again — is the
//! core's; this module only resolves the names the client asks for and hands back what the
//! DNS said.
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

use std::net::SocketAddr;
use std::sync::Arc;

use devp2p_core::dnsdisc::{
    Client, ClientConfig, DnsError, Event, NameError, ResolveError, SyncedTree, TreeUrl,
};
use devp2p_core::Instant as CoreInstant;
use hickory_resolver::config::{NameServerConfigGroup, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;
use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha20Rng;

/// Resolves TXT names, joining each record's character-strings (a TXT record longer than 255
/// bytes arrives in pieces, and EIP-1459 entries often are).
#[derive(Clone)]
pub struct DnsResolver {
    inner: Arc<TokioResolver>,
}

impl DnsResolver {
    /// The system's resolver configuration (`/etc/resolv.conf` on Unix).
    pub fn system() -> std::io::Result<Self> {
        let builder = TokioResolver::builder_tokio().map_err(|e| {
            std::io::Error::other(format!(
                "cannot read the system's resolver configuration: {e}"
            ))
        })?;
        Ok(DnsResolver {
            inner: Arc::new(builder.build()),
        })
    }

    /// Asks only the name servers at `servers` (UDP, and TCP when an answer is truncated).
    pub fn with_servers(servers: &[SocketAddr]) -> Self {
        let mut group = NameServerConfigGroup::new();
        for s in servers {
            group.merge(NameServerConfigGroup::from_ips_clear(
                &[s.ip()],
                s.port(),
                true,
            ));
        }
        let config = ResolverConfig::from_parts(None, vec![], group);
        let mut options = ResolverOpts::default();
        // The client times its lookups itself and re-checks roots on its own schedule.
        options.attempts = 1;
        options.cache_size = 0;
        let inner = TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            .with_options(options)
            .build();
        DnsResolver {
            inner: Arc::new(inner),
        }
    }

    /// Every TXT record at `name`, each with its character-strings joined with no separator.
    pub async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, ResolveError> {
        let fqdn = if name.ends_with('.') {
            name.to_owned()
        } else {
            format!("{name}.")
        };
        match self.inner.txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|txt| {
                    let bytes: Vec<u8> = txt
                        .txt_data()
                        .iter()
                        .flat_map(|s| s.iter().copied())
                        .collect();
                    String::from_utf8_lossy(&bytes).into_owned()
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Err(ResolveError::NotFound),
            Err(e) => Err(ResolveError::Failed(e.to_string())),
        }
    }
}

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
