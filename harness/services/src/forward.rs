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
