//! The application's side of the node task: the event stream, with the backlog counted in
//! bytes so the task stops reading sockets while the application falls behind.

use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use devp2p_core::node::NodeEvent;
use devp2p_mio::common::engine::{backlog_bytes, MAX_BACKLOG_BYTES};
use devp2p_mio::common::Backlog;
use tokio::sync::{mpsc, Notify};

/// Counters shared by the node task and the stream.
#[derive(Default)]
pub(crate) struct Shared {
    bytes: AtomicUsize,
    events: AtomicUsize,
    /// Wakes the node task when the backlog drops below the limit again.
    pub(crate) resume: Notify,
}

/// The node task's end.
pub(crate) struct EventSender {
    tx: mpsc::UnboundedSender<NodeEvent>,
    pub(crate) shared: Arc<Shared>,
}

impl EventSender {
    pub(crate) fn send(&self, event: NodeEvent) {
        if self.tx.is_closed() {
            return;
        }
        let bytes = backlog_bytes(&event);
        self.shared.bytes.fetch_add(bytes, Ordering::AcqRel);
        self.shared.events.fetch_add(1, Ordering::AcqRel);
        if self.tx.send(event).is_err() {
            self.shared.bytes.fetch_sub(bytes, Ordering::AcqRel);
            self.shared.events.fetch_sub(1, Ordering::AcqRel);
        }
    }

    pub(crate) fn backlog(&self) -> Backlog {
        if self.tx.is_closed() {
            return Backlog::default();
        }
        Backlog {
            bytes: self.shared.bytes.load(Ordering::Acquire),
            events: self.shared.events.load(Ordering::Acquire),
        }
    }
}

/// Everything the node reports, in order: peers added and removed (with reasons), messages,
/// failed connections, discovery events. It ends (`recv` returns `None`) when the node has
/// stopped. It is also a [`futures_core::Stream`].
///
/// Dropping the stream discards later events. Holding it without reading makes the node
/// stop reading its connections once 16 MiB of messages wait; peers then slow down (and
/// eventually time out).
///
/// A static peer whose port is closed: the dial fails, and the stream says how.
///
/// ```
/// use std::time::Duration;
/// use devp2p_core::node::{ConnectError, NodeEvent};
/// use devp2p_core::Enode;
/// use devp2p_tokio::{spawn, DriverConfig};
///
/// #[tokio::main(flavor = "current_thread")]
/// async fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let mut config = DriverConfig::default();
///     config.node.listen = "127.0.0.1:0".parse()?;
///     config.node.no_discovery = true;
///     let (node, mut events) = spawn(config)?;
///
///     // A port nobody listens on any more, and some other node's key.
///     let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
///     let key = "1dd9d65c4552b5eb43d5ad55a2ee3f56c6cbc1c64a5c8d659f51fcd51bace243\
///                51232b8d7821617d2b29b54b81cdefb9b3e9c37d7fd5f63270bcc9e1a6f6a439";
///     let peer: Enode = format!("enode://{key}@127.0.0.1:{port}").parse()?;
///     node.add_static(&peer).await?;
///
///     let failure = tokio::time::timeout(Duration::from_secs(5), async {
///         while let Some(event) = events.recv().await {
///             if let NodeEvent::ConnectionFailed(failure) = event {
///                 return Some(failure);
///             }
///         }
///         None // the node stopped
///     })
///     .await?
///     .expect("a failed dial");
///     assert!(matches!(failure.error, ConnectError::Tcp { .. }));
///     assert!(failure.is_configured_peer()); // a static peer: the driver logs it at info
///     println!("{failure}"); // "dial to static peer … at 127.0.0.1:… failed: TCP connect failed: …"
///
///     node.shutdown().await?;
///     // What the node reported before it stopped, then the end.
///     tokio::time::timeout(Duration::from_secs(5), async {
///         while events.recv().await.is_some() {}
///     })
///     .await?;
///     Ok(())
/// }
/// ```
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<NodeEvent>,
    shared: Arc<Shared>,
}

pub(crate) fn channel() -> (EventSender, EventStream) {
    let (tx, rx) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared::default());
    (
        EventSender {
            tx,
            shared: shared.clone(),
        },
        EventStream { rx, shared },
    )
}

impl EventStream {
    /// The next event; `None` once the node has stopped.
    pub async fn recv(&mut self) -> Option<NodeEvent> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<NodeEvent> {
        let e = self.rx.try_recv().ok()?;
        self.taken(&e);
        Some(e)
    }

    /// Polls for the next event.
    pub fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<NodeEvent>> {
        let p = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(e)) = &p {
            self.taken(e);
        }
        p
    }

    fn taken(&self, e: &NodeEvent) {
        let bytes = backlog_bytes(e);
        let before = self.shared.bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.shared.events.fetch_sub(1, Ordering::AcqRel);
        if before >= MAX_BACKLOG_BYTES && before - bytes < MAX_BACKLOG_BYTES {
            self.shared.resume.notify_one();
        }
    }
}

impl futures_core::Stream for EventStream {
    type Item = NodeEvent;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<NodeEvent>> {
        self.get_mut().poll_recv(cx)
    }
}
