//! A plain TCP forwarder from another of this machine's addresses to a loopback stand-in: how
//! `sam local`'s containers, which cannot reach the machine's loopback, reach a server of ours
//! through the Docker bridge's address. The bytes pass untouched (TLS stays end to end).

use tokio::net::{TcpListener, TcpStream};

pub struct Forward {
    task: tokio::task::JoinHandle<()>,
}

impl Forward {
    /// Listens on `host:port` (the same port number the stand-in has on 127.0.0.1) and forwards
    /// each connection to `127.0.0.1:port`.
    pub async fn start(host: &str, port: u16) -> Forward {
        let listener = TcpListener::bind((host, port))
            .await
            .unwrap_or_else(|e| panic!("binding the forwarder on {host}:{port}: {e}"));
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(mut backend) = TcpStream::connect(("127.0.0.1", port)).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                });
            }
        });
        Forward { task }
    }
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A loopback forwarder that can be held shut: while held, connections are accepted and then
/// wait, unanswered, as they would at a server that hangs (a stalled host, a dropped route);
/// once opened, they go through. How a test makes one server of several hang half-way.
pub struct Gate {
    pub port: u16,
    /// How many more connections go through before the gate holds (`None`: open).
    allowance: tokio::sync::watch::Sender<Option<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl Gate {
    /// Forwards connections on a free loopback port to `127.0.0.1:backend_port`, open at first.
    pub async fn start(backend_port: u16) -> Gate {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.expect("binding the gate");
        let port = listener.local_addr().expect("the gate's address").port();
        let (allowance, watch) = tokio::sync::watch::channel(None);
        let admit = allowance.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                // Counted in the order connections arrive.
                let mut passes = true;
                admit.send_modify(|left| match left {
                    Some(0) => passes = false,
                    Some(n) => *n -= 1,
                    None => {}
                });
                let mut watch = watch.clone();
                tokio::spawn(async move {
                    if !passes && watch.wait_for(Option::is_none).await.is_err() {
                        return;
                    }
                    let Ok(mut backend) = TcpStream::connect(("127.0.0.1", backend_port)).await else { return };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
                });
            }
        });
        Gate { port, allowance, task }
    }

    /// New connections wait from now on (those already through are not touched).
    pub fn hold(&self) {
        self.hold_after(0);
    }

    /// The next `connections` go through; those after them wait.
    pub fn hold_after(&self, connections: usize) {
        self.allowance.send_replace(Some(connections));
    }

    /// Lets the waiting connections, and every new one, through.
    pub fn open(&self) {
        self.allowance.send_replace(None);
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.task.abort();
    }
}
