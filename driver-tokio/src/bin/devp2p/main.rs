//! `devp2p`: the command-line tool. Subcommands follow go-ethereum's `cmd/devp2p`.
//!
//! Exit codes: 0 success, 1 the operation failed (message on stderr), 2 bad arguments. A
//! closed stdout (`| head -1`) ends a command quietly with 0 (see `output`).

// First: its `outln!` macro is used by the modules below.
#[macro_use]
mod output;
mod args;
mod discv4;
mod discv5;
mod dns;
mod enr;
mod key;
mod localnet;
mod node;
mod nodeset;
mod resolve_json;
mod rlpx;
mod sim;

/// The tool's allocator is mimalloc: `devp2p sim` keeps gigabytes of small allocations for
/// its nodes, and on glibc's malloc a 10,000-node network ran 1.6x slower (BENCHMARKS.md,
/// "Network simulation"). An application embedding the library keeps its own allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use devp2p_core::Enode;

use args::{
    parse_caps, parse_duration, parse_enode, parse_enode_list, parse_node_list, parse_v5_node,
    Caps, EnodeList, NodeList, V5Node,
};

/// Ethereum devp2p tool: keys, records, RLPx and discovery probes, and real nodes.
#[derive(Parser)]
#[command(name = "devp2p", version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Node keys: generate, and turn into enode URLs or signed records.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Node records.
    #[command(subcommand)]
    Enr(EnrCommand),
    /// RLPx probes.
    #[command(subcommand)]
    Rlpx(RlpxCommand),
    /// Discovery v4 probes, crawling, node-set refreshes and a bootnode.
    #[command(subcommand)]
    Discv4(Discv4Command),
    /// DNS node lists (EIP-1459): sync a tree, sign one, turn one into TXT records.
    #[command(subcommand)]
    Dns(DnsCommand),
    /// Node sets (geth's nodes.json): statistics and filters.
    #[command(subcommand)]
    Nodeset(NodesetCommand),
    /// Discovery v5 probes, crawling and a bootnode.
    #[command(subcommand)]
    Discv5(Discv5Command),
    /// Runs a node until Ctrl-C.
    Node(node::NodeArgs),
    /// Starts N nodes on 127.0.0.1 in this process (the first is the bootnode) and checks that
    /// every node finds every other through discovery and holds a session. Exits 0 only then.
    Localnet(localnet::LocalnetArgs),
    /// Simulates a whole network of nodes in this process under virtual time, from one
    /// seed: prints table fill, lookup recall, messages per node and the trace digest (the
    /// same command always prints the same digest).
    Sim(sim::SimArgs),
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Generates a node key: written to FILE (never overwriting one), or printed as hex.
    Generate {
        /// Where to write the key (64 hex characters, geth's nodekey format).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Prints the node id (Keccak-256 of the public key) of the key in FILE.
    ToId {
        /// The node key file (64 hex characters).
        file: PathBuf,
    },
    /// Prints the enode URL of the key in FILE.
    ToEnode(key::AddressArgs),
    /// Prints a signed record (enr:…) for the key in FILE.
    ToEnr {
        #[command(flatten)]
        address: key::AddressArgs,
        /// The record's sequence number.
        #[arg(long, default_value_t = 1)]
        seq: u64,
    },
}

#[derive(Subcommand)]
enum EnrCommand {
    /// Prints every field of a record (its signature verified) or of an enode URL.
    Decode {
        /// `enr:…` or `enode://…`.
        record: String,
    },
}

#[derive(Subcommand)]
enum RlpxCommand {
    /// Performs the RLPx handshake and Hello exchange, then prints the remote Hello.
    Ping {
        /// The node to ping.
        #[arg(value_parser = parse_enode)]
        enode: Enode,
        /// Capabilities to offer, e.g. eth/68,snap/1 (unknown ones as name/version:length).
        #[arg(long, value_parser = parse_caps)]
        caps: Option<Caps>,
        /// Give up after this long (e.g. 5s, 500ms).
        #[arg(long, value_parser = parse_duration, default_value = "5s")]
        timeout: Duration,
        /// Print one JSON object {"id","client","version","caps","listen_port","rtt_ms"}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum Discv4Command {
    /// Sends a Ping and waits for the Pong.
    Ping {
        /// The node to ping.
        #[arg(value_parser = parse_enode)]
        enode: Enode,
        /// Give up after this long.
        #[arg(long, value_parser = parse_duration, default_value = "5s")]
        timeout: Duration,
        /// Print one JSON object {"id","rtt_ms","enr_seq"}.
        #[arg(long)]
        json: bool,
    },
    /// Bonds with a node and fetches its record (EIP-868).
    Requestenr {
        /// The node to ask.
        #[arg(value_parser = parse_enode)]
        enode: Enode,
        /// Give up after this long.
        #[arg(long, value_parser = parse_duration, default_value = "5s")]
        timeout: Duration,
    },
    /// Finds a node's current address in the DHT by a lookup for its key.
    Resolve {
        /// The node to find.
        #[arg(value_parser = parse_enode)]
        enode: Enode,
        /// Where to start (comma-separated enode URLs or enr: records).
        #[arg(long, value_parser = parse_enode_list)]
        bootnodes: EnodeList,
        /// Give up after this long.
        #[arg(long, value_parser = parse_duration, default_value = "10s")]
        timeout: Duration,
    },
    /// Re-checks every node of a nodes.json file and writes it back, as geth's does.
    ///
    /// Every node of the set (geth's nodes.json), and every node given after it, is asked for
    /// its current record (ENRRequest, after a Ping/Pong bond), and the set is written back
    /// with geth's scoring: an answer takes the record and adds 1 to the score; silence halves
    /// the score of a node that answered before and removes it at 0, and leaves a node that
    /// never answered as it was. A missing file starts empty. 16 nodes at a time, 2 s each.
    ResolveJson {
        /// The node set to update (written back in place).
        file: PathBuf,
        /// More nodes to check and add if they answer (enode URLs or enr: records).
        nodes: Vec<String>,
        /// Where to start when the file holds no nodes and none are given (comma-separated
        /// enode URLs or enr: records); geth defaults to mainnet's bootnodes, we to none.
        #[arg(long, value_parser = parse_node_list)]
        bootnodes: Option<NodeList>,
    },
    /// Runs a discv4 bootnode until Ctrl-C or SIGTERM; prints its record first.
    ///
    /// The node answers Ping, FindNode and ENRRequest, learns who talks to it and dials
    /// nobody. geth's --rpc server is not offered.
    Listen(discv4::ListenArgs),
    /// Walks the DHT with random lookups and writes every node found.
    Crawl {
        /// Where to start (comma-separated enode URLs or enr: records).
        #[arg(long, value_parser = parse_enode_list)]
        bootnodes: EnodeList,
        /// How long to crawl.
        #[arg(long, value_parser = parse_duration, default_value = "30s")]
        timeout: Duration,
        /// Where to write the nodes (JSON); without it a summary is printed.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum NodesetCommand {
    /// How many nodes a set holds, and how many records carry each key.
    Info {
        /// The node set (geth's nodes.json format).
        file: PathBuf,
    },
    /// Writes the nodes that every filter keeps, as a node set, to stdout. Filters, as
    /// geth's: -limit N (the N highest scores), -ip CIDR, -min-age D (answering for at least
    /// D), -les-server, -snap, -dialable.
    Filter {
        /// The node set (geth's nodes.json format).
        file: PathBuf,
        /// The filters.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        filters: Vec<String>,
    },
}

#[derive(Subcommand)]
enum DnsCommand {
    /// Downloads the whole tree at an enrtree:// URL into a definition directory
    /// (enrtree-info.json and nodes.json; default: a directory named after the domain).
    Sync {
        /// The tree: `enrtree://<key>@<domain>`.
        url: String,
        /// Where to write the definition.
        dir: Option<PathBuf>,
        /// Name servers to ask (IP:port, comma-separated) instead of the system's.
        #[arg(long, value_delimiter = ',')]
        server: Vec<std::net::SocketAddr>,
        /// How long one lookup may take.
        #[arg(long, value_parser = parse_duration, default_value = "5s")]
        timeout: Duration,
    },
    /// Signs the tree of a definition directory's nodes.json and links with a node key file
    /// (64 hex characters) and writes the URL, seq and signature into its enrtree-info.json.
    Sign {
        /// The definition directory.
        dir: PathBuf,
        /// The signing key (a node key file; geth's tool takes a keystore file instead).
        keyfile: PathBuf,
        /// The domain the tree is published at (default: the stored URL's, else the
        /// directory's name).
        #[arg(long)]
        domain: Option<String>,
        /// The sequence number (default: the stored one plus one).
        #[arg(long)]
        seq: Option<u64>,
    },
    /// Writes the TXT records of a signed definition as JSON (name to text), after checking
    /// that the signature still matches the nodes and links.
    ToTxt {
        /// The definition directory.
        dir: PathBuf,
        /// Where to write the JSON (default: stdout).
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum Discv5Command {
    /// Handshakes with a node, sends a PING and waits for the PONG.
    Ping {
        /// The node: its enr: record (or an enode URL, whose record is then fetched in the
        /// handshake).
        #[arg(value_parser = parse_v5_node)]
        node: V5Node,
        #[command(flatten)]
        identity: discv5::Identity,
        /// Give up after this long.
        #[arg(long, value_parser = parse_duration, default_value = "5s")]
        timeout: Duration,
        /// Print one JSON object {"id","rtt_ms","enr_seq","seen_as"}.
        #[arg(long)]
        json: bool,
    },
    /// Prints a node's current record: asked of the node (FINDNODE, distance 0), else found by a
    /// lookup for its id through --bootnodes.
    Resolve {
        /// The node.
        #[arg(value_parser = parse_v5_node)]
        node: V5Node,
        /// Where to look the node up if it does not answer (comma-separated enode URLs or
        /// enr: records).
        #[arg(long, value_parser = parse_node_list)]
        bootnodes: Option<NodeList>,
        #[command(flatten)]
        identity: discv5::Identity,
        /// Give up after this long.
        #[arg(long, value_parser = parse_duration, default_value = "10s")]
        timeout: Duration,
    },
    /// Walks the DHT with random lookups, asks every node found for its record, and writes
    /// those that answered.
    Crawl {
        /// Where to start (comma-separated enode URLs or enr: records).
        #[arg(long, value_parser = parse_node_list)]
        bootnodes: NodeList,
        #[command(flatten)]
        identity: discv5::Identity,
        /// How long to crawl.
        #[arg(long, value_parser = parse_duration, default_value = "30s")]
        timeout: Duration,
        /// Where to write the nodes (geth's nodes.json); without it the records are printed.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Runs a discv5 node that only answers and learns (a bootnode) until Ctrl-C; prints
    /// its record first.
    Listen(discv5::ListenArgs),
}

/// Logs to stderr, filtered by `RUST_LOG` (else `default`). Coloured only on a terminal, and
/// not with `NO_COLOR` set (no-color.org): escape codes in a log file or a pipe are noise.
fn init_logs(default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(colour)
        .try_init();
}

fn main() -> ExitCode {
    // Usage errors exit with 2 (and --help / --version with 0) from inside clap.
    let cli = Cli::parse();
    let quiet = match &cli.command {
        Command::Node(a) if !a.json => "info",
        Command::Discv5(Discv5Command::Listen(a)) if !a.json => "info",
        Command::Discv4(Discv4Command::Listen(a)) if !a.json => "info",
        _ => "warn",
    };
    init_logs(quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A failure to report on stderr, exit status 1.
pub type Failure = Box<dyn std::error::Error + Send + Sync>;

async fn run(command: Command) -> Result<ExitCode, Failure> {
    match command {
        Command::Key(KeyCommand::Generate { out }) => key::generate(out.as_deref()),
        Command::Key(KeyCommand::ToId { file }) => key::to_id(&file),
        Command::Key(KeyCommand::ToEnode(a)) => key::to_enode(&a),
        Command::Key(KeyCommand::ToEnr { address, seq }) => key::to_enr(&address, seq),
        Command::Enr(EnrCommand::Decode { record }) => enr::decode(&record),
        Command::Rlpx(RlpxCommand::Ping {
            enode,
            caps,
            timeout,
            json,
        }) => rlpx::ping(&enode, caps.unwrap_or_default().0, timeout, json).await,
        Command::Discv4(Discv4Command::Ping {
            enode,
            timeout,
            json,
        }) => discv4::ping(&enode, timeout, json).await,
        Command::Discv4(Discv4Command::Requestenr { enode, timeout }) => {
            discv4::request_enr(&enode, timeout).await
        }
        Command::Discv4(Discv4Command::Resolve {
            enode,
            bootnodes,
            timeout,
        }) => discv4::resolve(&enode, bootnodes.0, timeout).await,
        Command::Discv4(Discv4Command::ResolveJson {
            file,
            nodes,
            bootnodes,
        }) => resolve_json::resolve_json(&file, &nodes, bootnodes).await,
        Command::Discv4(Discv4Command::Listen(a)) => discv4::listen(&a).await,
        Command::Discv4(Discv4Command::Crawl {
            bootnodes,
            timeout,
            out,
        }) => discv4::crawl(bootnodes.0, timeout, out.as_deref()).await,
        Command::Dns(DnsCommand::Sync {
            url,
            dir,
            server,
            timeout,
        }) => dns::sync(&url, dir.as_deref(), &server, timeout).await,
        Command::Dns(DnsCommand::Sign {
            dir,
            keyfile,
            domain,
            seq,
        }) => dns::sign(&dir, &keyfile, domain.as_deref(), seq),
        Command::Dns(DnsCommand::ToTxt { dir, out }) => dns::to_txt(&dir, out.as_deref()),
        Command::Nodeset(NodesetCommand::Info { file }) => nodeset::info(&file),
        Command::Nodeset(NodesetCommand::Filter { file, filters }) => {
            nodeset::filter(&file, &filters)
        }
        Command::Discv5(Discv5Command::Ping {
            node,
            identity,
            timeout,
            json,
        }) => discv5::ping(&node, &identity, timeout, json).await,
        Command::Discv5(Discv5Command::Resolve {
            node,
            bootnodes,
            identity,
            timeout,
        }) => discv5::resolve(&node, &identity, bootnodes.unwrap_or_default(), timeout).await,
        Command::Discv5(Discv5Command::Crawl {
            bootnodes,
            identity,
            timeout,
            out,
        }) => discv5::crawl(bootnodes, &identity, timeout, out.as_deref()).await,
        Command::Discv5(Discv5Command::Listen(a)) => discv5::listen(&a).await,
        Command::Node(a) => node::run(a).await,
        Command::Localnet(a) => localnet::run(a).await,
        Command::Sim(a) => sim::run_sim(a),
    }
}
