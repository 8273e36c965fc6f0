//! The write half of a STOMP connection, owned by a task of its own, so heart-beats go out while
//! the poll waits on DynamoDB, not only when it next writes a frame. A poll frozen or killed with
//! its environment then stops beating, and the broker closes the connection and hands the
//! messages it had sent ahead to the next consumer, instead of holding them for a socket that
//! may stay open for hours.

use std::time::Duration;

use async_stomp::client::{ClientCodec, Heartbeat};
use async_stomp::{Message, ToServer};
use futures::SinkExt;
use tokio::io::AsyncWrite;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedWrite;

type Pending = (Message<ToServer>, oneshot::Sender<Result<(), String>>);

pub struct StompWriter {
    frames: mpsc::Sender<Pending>,
    task: tokio::task::JoinHandle<()>,
}

/// How often we must beat: the larger of what we offered (`cx`) and what the broker asked for
/// (the second number of its `heart-beat`); none when either is 0 (STOMP 1.2, "Heart-beating").
pub fn negotiated_interval(offered_ms: u32, connected_header: Option<&str>) -> Option<Duration> {
    let wanted_ms: u32 = connected_header?.split(',').nth(1)?.trim().parse().ok()?;
    (offered_ms > 0 && wanted_ms > 0).then(|| Duration::from_millis(u64::from(offered_ms.max(wanted_ms))))
}

impl StompWriter {
    pub fn spawn<W: AsyncWrite + Send + Unpin + 'static>(write: W, heartbeat: Option<Duration>) -> StompWriter {
        let (frames, mut pending) = mpsc::channel::<Pending>(16);
        let mut writer = FramedWrite::new(write, ClientCodec::new());
        let task = tokio::spawn(async move {
            loop {
                let next = match heartbeat {
                    Some(every) => match tokio::time::timeout(every, pending.recv()).await {
                        Ok(next) => next,
                        // Nothing written for a whole interval: a bare end-of-line says we live.
                        Err(_) => match writer.send(Heartbeat).await {
                            Ok(()) => continue,
                            Err(_) => break,
                        },
                    },
                    None => pending.recv().await,
                };
                let Some((message, done)) = next else { break };
                let result = writer.send(message).await.map_err(|e| e.to_string());
                let failed = result.is_err();
                let _ = done.send(result);
                if failed {
                    break;
                }
            }
            let _ = SinkExt::<Heartbeat>::close(&mut writer).await;
        });
        StompWriter { frames, task }
    }

    /// Writes one frame, its extra headers included; returns once it is written and flushed.
    pub async fn send(&self, message: Message<ToServer>) -> Result<(), String> {
        let (done, written) = oneshot::channel();
        self.frames.send((message, done)).await.map_err(|_| "the connection's writer has stopped".to_owned())?;
        written.await.map_err(|_| "the connection's writer has stopped".to_owned())?
    }

    /// Stops beating and shuts the write side down.
    pub async fn close(self) {
        drop(self.frames);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_interval_is_the_larger_wish_and_none_when_either_side_declines() {
        assert_eq!(negotiated_interval(10_000, Some("0,4000")), Some(Duration::from_secs(10)));
        assert_eq!(negotiated_interval(1_000, Some("0,4000")), Some(Duration::from_secs(4)));
        assert_eq!(negotiated_interval(10_000, Some("5000,0")), None);
        assert_eq!(negotiated_interval(0, Some("0,4000")), None);
        assert_eq!(negotiated_interval(10_000, None), None);
        assert_eq!(negotiated_interval(10_000, Some("junk")), None);
    }
}
