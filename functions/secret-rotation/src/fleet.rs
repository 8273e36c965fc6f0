//! The servers a step works on: the one `host` of a secret, or each server its `hosts` list, a
//! few at a time. Nothing is remembered between steps or runs: each server's state is found by
//! logging in, so a step cut short on some servers converges when it runs again.

use std::future::Future;

use futures::StreamExt;

use crate::engine::EngineKind;
use crate::error::RotationError;
use crate::event::RotationEvent;
use crate::secret::{Origin, SecretDoc, Server};

/// What one server (`None`: the secret's one `host`) answered.
pub(crate) type ServerResult<T> = (Option<Server>, Result<T, RotationError>);

/// Runs `work` once for a secret with one `host`, or once per server of its `hosts` with at most
/// `concurrency` at a time. Every server is tried, also after another failed: the results say
/// which server holds what, in the list's order.
pub(crate) async fn on_each_server<T, F, Fut>(
    event: &RotationEvent,
    servers: Option<&[Server]>,
    concurrency: usize,
    work: F,
) -> Vec<ServerResult<T>>
where
    F: Fn(RotationEvent) -> Fut,
    Fut: Future<Output = Result<T, RotationError>>,
{
    let Some(servers) = servers else { return vec![(None, work(event.clone()).await)] };
    let runs = servers.iter().enumerate().map(|(index, server)| {
        let run = work(event.on(server));
        async move { (index, Some(server.clone()), run.await) }
    });
    // Unordered, so one slow server holds only its own place, not the ones behind it.
    let mut done: Vec<_> = futures::stream::iter(runs).buffer_unordered(concurrency.max(1)).collect().await;
    done.sort_by_key(|(index, _, _)| *index);
    done.into_iter().map(|(_, server, result)| (server, result)).collect()
}

/// The results, or the failure that answers for all: the first that `decisive` picks (a
/// failure no retry can pass outranks a passing one on an earlier server), else the first.
/// Every failure is logged, naming its server.
pub(crate) fn first_failure<T>(
    step: &'static str,
    results: Vec<ServerResult<T>>,
    decisive: impl Fn(&RotationError) -> bool,
) -> Result<Vec<T>, RotationError> {
    let mut done = Vec::with_capacity(results.len());
    let mut failures = Vec::new();
    for (server, result) in results {
        match result {
            Ok(value) => done.push(value),
            Err(error) => {
                let host = server.as_ref().map(Server::describe);
                tracing::warn!(step, server = host.as_deref().unwrap_or("the secret's host"), error_type = error.error_type(), error = %error, "the step failed on a server");
                failures.push(error);
            }
        }
    }
    if failures.is_empty() {
        return Ok(done);
    }
    let pick = failures.iter().position(&decisive).unwrap_or(0);
    Err(failures.swap_remove(pick))
}

/// A master secret for a `hosts` secret must list the same servers, so its credentials go only
/// to servers it names, and every server of the user's has a master to set it.
pub(crate) fn check_master_lists_the_servers(
    master: &SecretDoc,
    master_arn: &str,
    servers: &[Server],
    secret_id: &str,
) -> Result<(), RotationError> {
    let refused = |reason: String| RotationError::Refused { secret_id: secret_id.to_owned(), reason };
    let origin = Origin { secret_id: master_arn, stage: crate::versions::CURRENT };
    let Some(master_servers) = master.servers(origin)? else {
        return Err(refused(
            "the secret lists \"hosts\"; its master secret must list the same servers in \"hosts\"".into(),
        ));
    };
    let missing: Vec<String> =
        servers.iter().filter(|s| !master_servers.iter().any(|m| m.same_server(s))).map(Server::describe).collect();
    let extra: Vec<String> =
        master_servers.iter().filter(|m| !servers.iter().any(|s| s.same_server(m))).map(Server::describe).collect();
    if !missing.is_empty() || !extra.is_empty() {
        return Err(refused(format!(
            "the master secret's \"hosts\" are not the user secret's (missing: {}; not the user's: {})",
            list_or_none(&missing),
            list_or_none(&extra)
        )));
    }
    Ok(())
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// What a step needs to know of the servers before it touches any: the pending version's
/// servers (`None` for one `host`) and whether it is a database at all.
#[derive(Debug, Clone)]
pub(crate) struct Servers {
    pub list: Option<Vec<Server>>,
    pub engine: EngineKind,
}

impl Servers {
    pub fn of(doc: &SecretDoc, origin: Origin<'_>) -> Result<Servers, RotationError> {
        let engine = doc.engine(origin)?;
        let list = if engine == EngineKind::Generic { None } else { doc.servers(origin)? };
        Ok(Servers { list, engine })
    }

    pub fn count(&self) -> usize {
        self.list.as_ref().map_or(1, Vec::len)
    }
}
