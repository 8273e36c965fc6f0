//! The four rotation steps, as AWS documents them, each safe to run again.

use aws_sdk_secretsmanager::Client;
use serde::Serialize;

use crate::clients::AwsClients;
use crate::engine::{self, AccountState, ConnectionSpec, DbError, EngineKind, TlsMode};
use crate::error::{RotationError, DEADLINE_MARGIN};
use crate::event::{RotationEvent, Step};
use crate::fleet::{check_master_lists_the_servers, first_failure, on_each_server, Servers};
use crate::pair::UserPair;
use crate::rds_master;
use crate::rds_readers;
use crate::replication::wait_for_replicas;
use crate::rollback;
use crate::secret::{Origin, SecretDoc};
use crate::settings::{Settings, Strategy};
use crate::versions::{check_versions, read_doc, require_doc, sm_error, CURRENT, PENDING, PREVIOUS};

/// What a step did. Tests match the variants; the text is for people (`Display`, and the report
/// the function returns).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepOutcome {
    AlreadyCurrent,
    PendingExists,
    CreatedPending,
    GenericNothingToSet,
    PendingAlreadyLogsIn,
    SetByMaster,
    SetAsCurrentUser,
    SetAsPreviousUser,
    GenericValidated,
    PendingLogsIn,
    MovedCurrent,
}

impl StepOutcome {
    /// A re-run that found its work done.
    pub fn was_already_done(self) -> bool {
        matches!(self, StepOutcome::AlreadyCurrent | StepOutcome::PendingExists | StepOutcome::PendingAlreadyLogsIn)
    }

    pub fn describe(self) -> &'static str {
        match self {
            StepOutcome::AlreadyCurrent => "nothing to do: the version is already AWSCURRENT",
            StepOutcome::PendingExists => "nothing to do: the AWSPENDING version already exists",
            StepOutcome::CreatedPending => "created the AWSPENDING version",
            StepOutcome::GenericNothingToSet => "generic secret: validated, nothing to set",
            StepOutcome::PendingAlreadyLogsIn => "nothing to do: the pending credentials already log in",
            StepOutcome::SetByMaster => "set the pending password with the master credentials",
            StepOutcome::SetAsCurrentUser => "set the pending password (logged in as AWSCURRENT)",
            StepOutcome::SetAsPreviousUser => "set the pending password (logged in as AWSPREVIOUS)",
            StepOutcome::GenericValidated => "generic secret: validated",
            StepOutcome::PendingLogsIn => "the pending credentials log in",
            StepOutcome::MovedCurrent => "moved AWSCURRENT to the new version",
        }
    }
}

impl std::fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

impl Serialize for StepOutcome {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.describe())
    }
}

/// What a step did; returned to the caller and logged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepReport {
    pub step: &'static str,
    pub secret_id: String,
    pub token: String,
    pub result: StepOutcome,
}

/// Runs the step `event` names. `engine` is set once the step has read the secret (the
/// metrics' dimension).
pub(crate) async fn run_step(
    clients: &AwsClients,
    settings: &Settings,
    event: &RotationEvent,
    engine: &mut Option<EngineKind>,
    stop_at: Option<tokio::time::Instant>,
) -> Result<StepOutcome, RotationError> {
    let client = &clients.secrets;
    let versions = check_versions(client, event).await?;
    if versions.token_is_current {
        // A retried finishSecret (its token current already) resumes the wait for replicas.
        if event.step == Step::FinishSecret {
            wait_for_replicas(client, &event.secret_id, settings.replication_poll, stop_at).await?;
        }
        return Ok(StepOutcome::AlreadyCurrent);
    }
    if event.step == Step::CreateSecret {
        return create_secret(client, settings, event, engine).await;
    }
    let plan = match plan_servers(clients, settings, event, engine).await {
        Ok(plan) => plan,
        Err(error) => {
            // Nothing was touched yet; a refusal of the secrets still ends this rotation.
            if settings.rollback_on_failure && rollback::no_retry_can_pass(event.step, &error, false) {
                rollback::clear_pending(client, event).await;
            }
            return Err(error);
        }
    };
    let outcome = on_the_servers(clients, settings, event, &plan, stop_at).await?;
    if event.step != Step::FinishSecret {
        if event.step == Step::SetSecret && plan.servers.engine != EngineKind::Generic {
            crate::metrics::hosts_metrics(plan.servers.count()).emit();
        }
        return Ok(outcome);
    }
    let moved = finish_secret(client, event, versions.current_version.as_deref()).await?;
    if plan.single_user {
        report_password_downtime(clients, settings, event, &plan).await;
    }
    wait_for_replicas(client, &event.secret_id, settings.replication_poll, stop_at).await?;
    Ok(moved)
}

/// What setSecret, testSecret and finishSecret know before they touch a server.
struct Plan {
    servers: Servers,
    /// A database whose one user changes its own password: a failure after the change leaves
    /// AWSCURRENT's readers locked out, so it is rolled back.
    single_user: bool,
}

/// Reads the pending version as a whole: its servers, its engine, its strategy. For a `hosts`
/// secret rotated by a master, the master must list the same servers before any is touched. A
/// pending version without a value is left to the step to refuse, in its own words.
async fn plan_servers(
    clients: &AwsClients,
    settings: &Settings,
    event: &RotationEvent,
    engine: &mut Option<EngineKind>,
) -> Result<Plan, RotationError> {
    let secret_id = &event.secret_id;
    let no_servers = Plan { servers: Servers { list: None, engine: EngineKind::Generic }, single_user: false };
    let Some(pending) = read_doc(&clients.secrets, secret_id, PENDING, Some(&event.token), None).await? else {
        return Ok(no_servers);
    };
    let origin = Origin { secret_id, stage: PENDING };
    let servers = Servers::of(&pending, origin)?;
    *engine = Some(servers.engine);
    if servers.engine == EngineKind::Generic {
        return Ok(Plan { servers, single_user: false });
    }
    let master = master_arn(settings, &pending, secret_id)?;
    if let (Some(list), Some(master_arn)) = (&servers.list, master) {
        let master_doc = require_doc(&clients.secrets, master_arn, CURRENT, None, None).await?;
        check_master_lists_the_servers(&master_doc, master_arn, list, secret_id)?;
    }
    Ok(Plan { servers, single_user: master.is_none() })
}

/// Runs the step on every server, and when it fails, undoes what it can before answering the
/// original failure: a single user's servers get the AWSCURRENT password back, and a refusal no
/// retry can pass clears AWSPENDING. The servers' own work stops early enough to leave the
/// rollback its time.
async fn on_the_servers(
    clients: &AwsClients,
    settings: &Settings,
    event: &RotationEvent,
    plan: &Plan,
    stop_at: Option<tokio::time::Instant>,
) -> Result<StepOutcome, RotationError> {
    let rolls_back = settings.rollback_on_failure && plan.single_user;
    let reserve = stop_at.filter(|_| rolls_back).map(|stop_at| rollback_reserve(settings, &plan.servers, stop_at));
    let work = every_server(clients, settings, event, plan);
    let result = match (stop_at, reserve) {
        (Some(stop_at), Some(reserve)) => tokio::time::timeout_at(stop_at - reserve, work).await.unwrap_or_else(|_| {
            Err(RotationError::DeadlineExceeded {
                step: event.step.name(),
                secret_id: event.secret_id.clone(),
                margin_ms: (reserve + DEADLINE_MARGIN).as_millis(),
            })
        }),
        _ => work.await,
    };
    let Err(error) = result else { return result };
    if !settings.rollback_on_failure {
        return Err(error);
    }
    let mut every_server_back = true;
    if plan.single_user {
        let servers = plan.servers.list.as_deref();
        // The rollback ends a moment before the step's time, so AWSPENDING can still be cleared.
        let until = stop_at.map(|stop_at| stop_at.checked_sub(CLEARING_TIME).unwrap_or(stop_at));
        let rolled = rollback::put_current_back(clients, settings, event, servers, until).await;
        crate::metrics::rollback_metrics(rolled.put_back).emit();
        every_server_back = rolled.not_put_back.is_empty();
        if !every_server_back {
            tracing::error!(secret_id = %event.secret_id, servers = %rolled.not_put_back.join(", "), "these servers may still hold the pending password; AWSPENDING is kept so the retry's setSecret finds them");
        }
    }
    // Only once no server may still hold the pending password: it would be in no version then.
    if every_server_back && rollback::no_retry_can_pass(event.step, &error, plan.single_user) {
        rollback::clear_pending(&clients.secrets, event).await;
    }
    Err(error)
}

/// Kept after the rollback, before the step's own stop time, to clear AWSPENDING and answer.
const CLEARING_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// The time kept back for a rollback: one login and one statement for each round of servers
/// (they are put back `host_concurrency` at a time), and the time to clear AWSPENDING; never
/// more than half of what the step has left.
fn rollback_reserve(settings: &Settings, servers: &Servers, stop_at: tokio::time::Instant) -> std::time::Duration {
    let rounds = servers.count().div_ceil(settings.host_concurrency.max(1));
    let one_round = settings.db.connect_timeout + settings.db.statement_timeout;
    let wanted = one_round.saturating_mul(u32::try_from(rounds).unwrap_or(u32::MAX)).saturating_add(CLEARING_TIME);
    let left = stop_at.saturating_duration_since(tokio::time::Instant::now());
    wanted.min(left / 2)
}

/// The step's own work on each server, a few at a time. Of the failures, one no retry can pass
/// answers first.
async fn every_server(
    clients: &AwsClients,
    settings: &Settings,
    event: &RotationEvent,
    plan: &Plan,
) -> Result<StepOutcome, RotationError> {
    let list = plan.servers.list.as_deref();
    let concurrency = settings.host_concurrency;
    let decisive = |e: &RotationError| rollback::no_retry_can_pass(event.step, e, plan.single_user);
    let outcomes = match event.step {
        Step::SetSecret => {
            // A single user's servers are first checked to take one of the secret's passwords,
            // so one server that takes none fails the step before any other is changed (and
            // changed back), on every retry.
            if plan.single_user && list.is_some() {
                let results = on_each_server(event, list, concurrency, |event| async move {
                    takes_a_known_password(clients, settings, &event).await
                })
                .await;
                first_failure(event.step.name(), results, decisive)?;
            }
            let results = on_each_server(event, list, concurrency, |event| async move {
                set_secret(clients, settings, &event, &mut None).await
            })
            .await;
            first_failure(event.step.name(), results, decisive)?
        }
        Step::TestSecret => {
            let results = on_each_server(event, list, concurrency, |event| async move {
                test_secret(clients, settings, &event, &mut None).await
            })
            .await;
            first_failure(event.step.name(), results, decisive)?
        }
        Step::FinishSecret => {
            let results = on_each_server(event, list, concurrency, |event| async move {
                pending_is_ready(clients, settings, &event, &mut None).await.map(|_| StepOutcome::PendingLogsIn)
            })
            .await;
            first_failure(event.step.name(), results, decisive)?
        }
        Step::CreateSecret => unreachable_step(event)?,
    };
    // What was done somewhere says more than what was found done everywhere.
    let first = outcomes.first().copied().unwrap_or(StepOutcome::PendingLogsIn);
    Ok(outcomes.into_iter().find(|o| !o.was_already_done()).unwrap_or(first))
}

/// Whether the single user logs in on this server with the pending, current or previous
/// password: one of them must, or setSecret cannot set it there. Changes nothing.
async fn takes_a_known_password(
    clients: &AwsClients,
    settings: &Settings,
    event: &RotationEvent,
) -> Result<(), RotationError> {
    let secret_id = &event.secret_id;
    let fail = |e| db_error(Step::SetSecret, secret_id, e);
    let server = event.server.as_ref();
    let mut user = None;
    for (stage, version) in [(PENDING, Some(event.token.as_str())), (CURRENT, None), (PREVIOUS, None)] {
        let Ok(Some(doc)) = read_doc(&clients.secrets, secret_id, stage, version, server).await else { continue };
        let Ok(spec) = doc.connection(Origin { secret_id, stage }) else { continue };
        user.get_or_insert_with(|| spec.username.clone());
        if logs_in(&spec, settings).await.map_err(fail)? {
            return Ok(());
        }
    }
    Err(fail(DbError::AuthFailed { user: user.unwrap_or_default() }))
}

/// createSecret never reaches the servers; this names the mistake instead of panicking.
fn unreachable_step(event: &RotationEvent) -> Result<Vec<StepOutcome>, RotationError> {
    Err(RotationError::MalformedEvent(format!("{} does not work on servers", event.step.name())))
}

/// The database a secret describes, with every field the engine needs checked, or `None` for
/// a generic secret (no external system).
fn database_connection(doc: &SecretDoc, origin: Origin<'_>) -> Result<Option<ConnectionSpec>, RotationError> {
    match doc.engine(origin)? {
        EngineKind::Generic => Ok(None),
        _ => doc.connection(origin).map(Some),
    }
}

/// The pending version, read once, and its database connection (`None` for a generic secret).
async fn pending_version(
    client: &Client,
    event: &RotationEvent,
    engine: &mut Option<EngineKind>,
) -> Result<(SecretDoc, Option<ConnectionSpec>), RotationError> {
    let pending = require_doc(client, &event.secret_id, PENDING, Some(&event.token), event.server.as_ref()).await?;
    let origin = Origin { secret_id: &event.secret_id, stage: PENDING };
    *engine = pending.engine(origin).ok();
    let database = database_connection(&pending, origin)?;
    Ok((pending, database))
}

async fn create_secret(
    client: &Client,
    settings: &Settings,
    event: &RotationEvent,
    engine: &mut Option<EngineKind>,
) -> Result<StepOutcome, RotationError> {
    let secret_id = &event.secret_id;
    let current = require_doc(client, secret_id, CURRENT, None, None).await?;
    *engine = current.engine(Origin { secret_id, stage: CURRENT }).ok();
    let database = database_connection(&current, Origin { secret_id, stage: CURRENT })?;
    if read_doc(client, secret_id, PENDING, Some(&event.token), None).await?.is_some() {
        return Ok(StepOutcome::PendingExists);
    }
    let mut pending = current.clone();
    if let (Some(database), Some(_)) = (&database, master_arn(settings, &current, secret_id)?) {
        let refused = |reason| RotationError::Refused { secret_id: secret_id.clone(), reason };
        let pair = UserPair::for_user(&current, &database.username).map_err(refused)?;
        let alternate = pair.alternate(&database.username).unwrap_or(&pair.clone).to_owned();
        check_user_name_fits(&current, &alternate).map_err(refused)?;
        pending.set_text("username", &alternate);
        pair.record(&mut pending);
    }
    // A generic secret has no database to say which field is the credential: rotating one the
    // consumer does not use would be a silent no-op, so the field must be there.
    let field = match database {
        Some(_) => "password",
        None if current.text(&settings.generic_field).is_some() => settings.generic_field.as_str(),
        None => {
            return Err(RotationError::MalformedSecret {
                secret_id: secret_id.clone(),
                stage: CURRENT.into(),
                reason: format!(
                    "a generic secret without \"{}\", the field rotated; set GENERIC_FIELD to the field that holds the credential",
                    settings.generic_field
                ),
            })
        }
    };
    let password = settings.password_policy.generate(client, secret_id).await?;
    pending.set_text(field, &password);
    client
        .put_secret_value()
        .secret_id(secret_id)
        .client_request_token(&event.token)
        .secret_string(pending.to_json())
        .version_stages(PENDING)
        .set_rotation_token(event.rotation_token.clone())
        .send()
        .await
        .map_err(|e| sm_error("PutSecretValue", secret_id, &e))?;
    Ok(StepOutcome::CreatedPending)
}

/// The master secret the strategy says to rotate with: `None` for a single user.
fn master_arn<'a>(settings: &Settings, doc: &'a SecretDoc, secret_id: &str) -> Result<Option<&'a str>, RotationError> {
    match settings.strategy {
        Strategy::Auto => Ok(doc.master_arn()),
        Strategy::Single => Ok(None),
        Strategy::Alternating => doc.master_arn().map(Some).ok_or_else(|| RotationError::Refused {
            secret_id: secret_id.to_owned(),
            reason: "ROTATION_STRATEGY is alternating, and the secret has no \"masterarn\"".into(),
        }),
    }
}

/// The engines' limits on user names: PostgreSQL 63 bytes (NAMEDATALEN - 1), MySQL 32
/// characters, MariaDB 80 characters. Checked before AWSPENDING is written, so a clone name the
/// database would refuse (or, on PostgreSQL, silently truncate) never reaches a rotation.
fn check_user_name_fits(doc: &SecretDoc, name: &str) -> Result<(), String> {
    let engine = doc.text("engine").unwrap_or_default();
    let (limit, length, unit) = match engine {
        "postgres" | "aurora-postgresql" => (63, name.len(), "bytes"),
        "mariadb" => (80, name.chars().count(), "characters"),
        _ => (32, name.chars().count(), "characters"),
    };
    if length > limit {
        return Err(format!(
            "the alternate user name {name:?} is {length} {unit} long, and {engine} allows {limit}; shorten the user name"
        ));
    }
    Ok(())
}

fn db_error(step: Step, secret_id: &str, source: DbError) -> RotationError {
    RotationError::Database { step: step.name(), secret_id: secret_id.to_owned(), source }
}

async fn set_secret(
    clients: &AwsClients,
    settings: &Settings,
    event: &RotationEvent,
    engine: &mut Option<EngineKind>,
) -> Result<StepOutcome, RotationError> {
    let client = &clients.secrets;
    let secret_id = &event.secret_id;
    let (pending, Some(target)) = pending_version(client, event, engine).await? else {
        return Ok(StepOutcome::GenericNothingToSet);
    };
    let fail = |e| db_error(Step::SetSecret, secret_id, e);
    // Alternating users: the master's work runs every time, never skipped because the pending
    // password already logs in: a clone whose grants were cut short (a failed GRANT, a timeout)
    // logs in too, and must be made whole before testSecret and finishSecret can pass it.
    if let Some(master_arn) = master_arn(settings, &pending, secret_id)? {
        return set_with_master(clients, settings, event, &pending, &target, master_arn).await;
    }
    match engine::check_login(&target, &settings.db).await {
        Ok(()) => Ok(StepOutcome::PendingAlreadyLogsIn),
        Err(e) if e.is_auth_failure() => set_as_single_user(client, settings, event, &target).await,
        Err(e) => Err(fail(e)),
    }
}

/// Single user: the user changes its own password, logged in with the current credentials, or
/// failing that the previous ones (a re-run after the password was already changed).
async fn set_as_single_user(
    client: &Client,
    settings: &Settings,
    event: &RotationEvent,
    target: &ConnectionSpec,
) -> Result<StepOutcome, RotationError> {
    let secret_id = &event.secret_id;
    let fail = |e| db_error(Step::SetSecret, secret_id, e);
    let mut last_error = None;
    for stage in [CURRENT, PREVIOUS] {
        let doc = match read_doc(client, secret_id, stage, None, event.server.as_ref()).await {
            Ok(Some(doc)) => doc,
            Ok(None) => continue,
            // An AWSPREVIOUS from before this server was listed (or from before `hosts`) is no
            // fallback here, not a fault of the rotation.
            Err(RotationError::MalformedSecret { .. }) if stage == PREVIOUS => continue,
            Err(e) => return Err(e),
        };
        let Ok(old) = doc.connection(Origin { secret_id, stage }) else { continue };
        if old.username != target.username {
            return Err(RotationError::MalformedSecret {
                secret_id: secret_id.clone(),
                stage: stage.to_owned(),
                reason: "its user name differs from the pending version's (single-user rotation changes one user)"
                    .into(),
            });
        }
        let differ = target.fields_that_differ(&old, true);
        if !differ.is_empty() {
            return Err(RotationError::Refused {
                secret_id: secret_id.clone(),
                reason: format!(
                    "the pending version's {} differ from {stage}'s (single-user rotation changes one user in place)",
                    differ.join(", ")
                ),
            });
        }
        let login: ConnectionSpec = target.with_credentials(&old.username, &old.password);
        match engine::set_own_password(&login, &target.password, &settings.db).await {
            Ok(()) => {
                return Ok(if stage == CURRENT {
                    StepOutcome::SetAsCurrentUser
                } else {
                    StepOutcome::SetAsPreviousUser
                })
            }
            Err(e) if e.is_auth_failure() => last_error = Some(e),
            Err(e) => return Err(fail(e)),
        }
    }
    Err(fail(last_error.unwrap_or(DbError::AuthFailed { user: target.username.clone() })))
}

/// Alternating users: the master's credentials set the pending user's password. They go only to
/// the master's own database (its secret's host, port and TLS, never the user secret's), and
/// only once the secrets are shown to describe one alternating rotation on that database, as
/// AWS's MultiUser functions check, and more.
async fn set_with_master(
    clients: &AwsClients,
    settings: &Settings,
    event: &RotationEvent,
    pending: &SecretDoc,
    target: &ConnectionSpec,
    master_arn: &str,
) -> Result<StepOutcome, RotationError> {
    let secret_id = &event.secret_id;
    let fail = |e| db_error(Step::SetSecret, secret_id, e);
    let alternation = alternation(clients, event, pending, target, master_arn).await?;
    // AWS's own guard: the current credentials still log in, at the current host.
    engine::check_login(&alternation.current, &settings.db).await.map_err(fail)?;
    let (master, pair) = (&alternation.master, &alternation.pair);
    // The first pairing: the clone must be the function's own, not a user that merely has the
    // name.
    if alternation.first_pairing && target.username == pair.clone {
        check_first_clone(clients, settings, event, &alternation, target).await?;
    }
    // Back to the original only from a clone of it: a pair recorded by hand in a secret whose
    // user is an unrelated `<name>_clone` must not hand over `<name>`'s password.
    if target.username == pair.original && alternation.current.username == pair.clone {
        engine::check_clone_of(master, &pair.clone, &pair.original, &settings.db).await.map_err(fail)?;
    }
    engine::set_user_password(
        &alternation.master,
        &target.username,
        &target.password,
        &alternation.pair.original,
        &settings.db,
    )
    .await
    .map_err(fail)?;
    Ok(StepOutcome::SetByMaster)
}

/// At the first pairing, a `<user>_clone` that exists is taken only as one of the function's
/// own. On PostgreSQL, when it is a member of the original's role, which only an administrator
/// of that role can make it. On MySQL/MariaDB, when it shows that this function made it: locked
/// (as setSecret leaves it while it works) and holding no host or privilege beyond the
/// original's; logging in with the pending password (an earlier run of this very step); or named
/// by AWSPREVIOUS and logging in with its password (a clone of rotations made before pairs were
/// recorded).
async fn check_first_clone(
    clients: &AwsClients,
    settings: &Settings,
    event: &RotationEvent,
    alternation: &Alternation,
    target: &ConnectionSpec,
) -> Result<(), RotationError> {
    let secret_id = &event.secret_id;
    let fail = |e| db_error(Step::SetSecret, secret_id, e);
    let (master, pair) = (&alternation.master, &alternation.pair);
    // The account the master will change is the writer's: whether it takes a password is asked
    // there too, not on a reader that may lag behind it (or, made writable, differ from it).
    let probe = if alternation.reader { on_server_of(target, master) } else { target.clone() };
    let state = engine::account_state(master, &pair.clone, &settings.db).await.map_err(fail)?;
    if state == AccountState::Absent {
        return Ok(());
    }
    let tied = engine::may_be_own_clone(master, &pair.clone, &pair.original, &settings.db).await.map_err(fail)?;
    // The pending password is one Secrets Manager made for this rotation: an account that takes
    // it was given it by this step. A locked account must also hold no more than the original
    // (a MySQL 8 role, or a user a DBA locked, is locked too).
    let shown = match master.kind {
        EngineKind::Postgres => tied,
        _ => {
            (state == AccountState::Locked && tied)
                || logs_in(&probe, settings).await.map_err(fail)?
                || previous_names_and_logs_in(clients, settings, event, &probe).await?
        }
    };
    if shown {
        return Ok(());
    }
    Err(RotationError::Refused {
        secret_id: secret_id.clone(),
        reason: format!(
            "a user {:?} already exists and is not one this function made; if it is the clone of an earlier rotation, record the pair in the current version (\"alternating_users\": [{:?}, {:?}]), else rename one of them",
            pair.clone, pair.original, pair.clone
        ),
    })
}

/// `spec`'s credentials, on `server`'s server (its host, port and TLS).
fn on_server_of(spec: &ConnectionSpec, server: &ConnectionSpec) -> ConnectionSpec {
    ConnectionSpec { host: server.host.clone(), port: server.port, tls: server.tls, ..spec.clone() }
}

/// Whether `spec` logs in: `false` for a refused login, an error for any other failure (an
/// unreachable server is not evidence either way).
async fn logs_in(spec: &ConnectionSpec, settings: &Settings) -> Result<bool, DbError> {
    match engine::check_login(spec, &settings.db).await {
        Ok(()) => Ok(true),
        Err(e) if e.is_auth_failure() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Whether AWSPREVIOUS names the pending user and its credentials log in.
async fn previous_names_and_logs_in(
    clients: &AwsClients,
    settings: &Settings,
    event: &RotationEvent,
    target: &ConnectionSpec,
) -> Result<bool, RotationError> {
    let secret_id = &event.secret_id;
    let Some(previous) = read_doc(&clients.secrets, secret_id, PREVIOUS, None, event.server.as_ref()).await? else {
        return Ok(false);
    };
    let Ok(previous) = previous.connection(Origin { secret_id, stage: PREVIOUS }) else { return Ok(false) };
    if previous.username != target.username {
        return Ok(false);
    }
    let login = target.with_credentials(&previous.username, &previous.password);
    logs_in(&login, settings).await.map_err(|e| db_error(Step::SetSecret, secret_id, e))
}

/// One alternating rotation, checked: the current version's connection, the master's, and the
/// pair.
struct Alternation {
    current: ConnectionSpec,
    master: ConnectionSpec,
    pair: UserPair,
    /// The current version records no pair: this rotation makes the first.
    first_pairing: bool,
    /// The user's host is a reader of the master's database (a read replica, an instance or the
    /// reader endpoint of its cluster): passwords are set through the master's server and reach
    /// the user's by replication.
    reader: bool,
}

/// Reads the current and master secrets and checks that, with the pending version, they
/// describe one alternating rotation on the master's own database; only then may the master's
/// credentials be used.
async fn alternation(
    clients: &AwsClients,
    event: &RotationEvent,
    pending: &SecretDoc,
    target: &ConnectionSpec,
    master_arn: &str,
) -> Result<Alternation, RotationError> {
    let secret_id = &event.secret_id;
    let current_doc = require_doc(&clients.secrets, secret_id, CURRENT, None, event.server.as_ref()).await?;
    let current = current_doc.connection(Origin { secret_id, stage: CURRENT })?;
    let master_doc = require_doc(&clients.secrets, master_arn, CURRENT, None, event.server.as_ref()).await?;
    let master = master_connection(clients, master_arn, &master_doc).await?;
    let refused = |reason| RotationError::Refused { secret_id: secret_id.clone(), reason };
    let pair = recorded_pair(pending, &current_doc, &current.username, secret_id)?;
    // Checked first without RDS, so a refusal for any other reason never waits on RDS, and an
    // RDS failure is answered as one (retried), never as a refusal.
    let reader = match check_alternation(&current, target, &master, &pair, false) {
        Ok(()) => false,
        Err(reason) => {
            let reader = reads_from(clients, &current, &master).await.map_err(|message| RotationError::Rds {
                operation: "DescribeDBInstances/DescribeDBClusters",
                resource: format!("{}:{}", current.host, current.port),
                message,
            })?;
            if !reader {
                return Err(refused(reason));
            }
            check_alternation(&current, target, &master, &pair, true).map_err(refused)?;
            true
        }
    };
    let first_pairing = UserPair::recorded(&current_doc).map_err(refused)?.is_none();
    Ok(Alternation { current, master, pair, first_pairing, reader })
}

/// Whether the user's server, on another host or port than the master's but the same engine, is
/// a reader of the master's database, as the RDS API lists them. No RDS call when both name
/// the same server.
async fn reads_from(clients: &AwsClients, user: &ConnectionSpec, master: &ConnectionSpec) -> Result<bool, String> {
    let differ = master.fields_that_differ(user, false);
    if differ.is_empty() || differ.contains(&"engine") {
        return Ok(false);
    }
    let user_address = rds_readers::Address { host: &user.host, port: user.port };
    let master_address = rds_readers::Address { host: &master.host, port: master.port };
    rds_readers::is_reader_of(&clients.rds, user_address, master_address).await
}

/// Alternating users: when the pending user is the clone, it must hold exactly what the original
/// holds (`PrivilegeMismatch` otherwise), so a clone whose setSecret was cut short, or that was
/// changed since, is never promoted. The original itself is the measure, so it needs no check.
async fn check_clone_parity(
    clients: &AwsClients,
    settings: &Settings,
    event: &RotationEvent,
    pending: &SecretDoc,
    target: &ConnectionSpec,
) -> Result<(), RotationError> {
    let Some(master_arn) = master_arn(settings, pending, &event.secret_id)? else { return Ok(()) };
    let alternation = alternation(clients, event, pending, target, master_arn).await?;
    clone_holds_what_the_original_holds(settings, event, &alternation, target).await
}

/// The parity check itself, for an alternation already read.
async fn clone_holds_what_the_original_holds(
    settings: &Settings,
    event: &RotationEvent,
    alternation: &Alternation,
    target: &ConnectionSpec,
) -> Result<(), RotationError> {
    if target.username != alternation.pair.clone {
        return Ok(());
    }
    engine::check_privilege_parity(&alternation.master, &target.username, &alternation.pair.original, &settings.db)
        .await
        .map_err(|e| db_error(event.step, &event.secret_id, e))
}

/// The pair the pending version records (createSecret records it), which must be the current
/// version's when that records one; for a pending version written before pairs were recorded,
/// the pair the current version gives.
fn recorded_pair(
    pending: &SecretDoc,
    current: &SecretDoc,
    current_user: &str,
    secret_id: &str,
) -> Result<UserPair, RotationError> {
    let refused = |reason| RotationError::Refused { secret_id: secret_id.to_owned(), reason };
    match (UserPair::recorded(pending).map_err(refused)?, UserPair::recorded(current).map_err(refused)?) {
        (Some(pending), Some(current)) if pending != current => {
            Err(refused("the pending version's \"alternating_users\" differ from the current version's".into()))
        }
        (Some(pair), _) | (None, Some(pair)) => Ok(pair),
        (None, None) => UserPair::for_user(current, current_user).map_err(refused),
    }
}

/// The master's own database: the server its secret names or, for a master secret that RDS
/// manages (only `username` and `password`, and an RDS tag), the writer endpoint RDS gives for
/// the instance or cluster the tag names.
async fn master_connection(
    clients: &AwsClients,
    master_arn: &str,
    doc: &SecretDoc,
) -> Result<ConnectionSpec, RotationError> {
    let origin = Origin { secret_id: master_arn, stage: CURRENT };
    if rds_master::names_no_server(doc) {
        if let Some(owner) = rds_master::owner_of(&clients.secrets, master_arn).await? {
            let endpoint = rds_master::endpoint_of(&clients.rds, master_arn, &owner).await?;
            tracing::info!(master = master_arn, host = %endpoint.host, port = endpoint.port, "master secret managed by RDS; its endpoint is from the RDS API");
            return rds_master::master_connection(doc, origin, &endpoint);
        }
    }
    // The master's password is the one worth stealing: without "ssl": false in its own secret,
    // it never goes to a server that answers "no TLS" (which anyone on the path can answer).
    doc.connection(origin).map(|spec| match spec.tls {
        TlsMode::Prefer => ConnectionSpec { tls: TlsMode::Require, ..spec },
        _ => spec,
    })
}

/// Why the current, pending and master secrets do not describe one alternating rotation on the
/// master's own database, naming the fields that differ; `Ok` when they do.
fn check_alternation(
    current: &ConnectionSpec,
    pending: &ConnectionSpec,
    master: &ConnectionSpec,
    pair: &UserPair,
    reader_of_master: bool,
) -> Result<(), String> {
    let differ = pending.fields_that_differ(current, true);
    if !differ.is_empty() {
        return Err(format!("the pending version's {} differ from the current version's", differ.join(", ")));
    }
    if pair.alternate(&current.username) != Some(pending.username.as_str()) {
        return Err(format!(
            "the pending user {:?} is not the alternate of the current user {:?}",
            pending.username, current.username
        ));
    }
    // The master names the server; its own dbname may be another database on it. A reader of
    // the master's database is the other server allowed: the master's credentials still go
    // only to the master's own server.
    let elsewhere = master.fields_that_differ(current, false);
    let allowed = elsewhere.is_empty() || (reader_of_master && !elsewhere.contains(&"engine"));
    if !allowed {
        return Err(format!(
            "the master secret's {} differ from the user secret's: the master's credentials go only to the master's own database",
            elsewhere.join(", ")
        ));
    }
    for user in [pending.username.as_str(), current.username.as_str(), pair.original.as_str()] {
        if user.eq_ignore_ascii_case(&master.username) {
            return Err(format!("the user {user:?} is the master's own user"));
        }
    }
    Ok(())
}

async fn test_secret(
    clients: &AwsClients,
    settings: &Settings,
    event: &RotationEvent,
    engine: &mut Option<EngineKind>,
) -> Result<StepOutcome, RotationError> {
    let (pending, Some(spec)) = pending_version(&clients.secrets, event, engine).await? else {
        return Ok(StepOutcome::GenericValidated);
    };
    let fail = |e| db_error(Step::TestSecret, &event.secret_id, e);
    let Some(master_arn) = master_arn(settings, &pending, &event.secret_id)? else {
        engine::check_login(&spec, &settings.db).await.map_err(fail)?;
        return Ok(StepOutcome::PendingLogsIn);
    };
    let alternation = alternation(clients, event, &pending, &spec, master_arn).await?;
    if alternation.reader {
        logs_in_once_replayed(&spec, settings).await.map_err(fail)?;
    } else {
        engine::check_login(&spec, &settings.db).await.map_err(fail)?;
    }
    clone_holds_what_the_original_holds(settings, event, &alternation, &spec).await?;
    Ok(StepOutcome::PendingLogsIn)
}

/// The pauses between testSecret's logins on a reader that has not replayed the new password:
/// doubling, so a lagging reader costs few failed logins (an account with
/// `FAILED_LOGIN_ATTEMPTS` or MariaDB's `max_password_errors` would lock after a handful), about
/// 15 s in all, within the step's time.
const READER_PAUSES_MS: [u64; 6] = [250, 500, 1000, 2000, 4000, 8000];

/// A reader learns the password setSecret set on the writer once it has replayed it: logs in
/// again after each pause until it does; any other failure ends the wait, and so does the last
/// pause (or, before it, the step's own deadline).
async fn logs_in_once_replayed(spec: &ConnectionSpec, settings: &Settings) -> Result<(), DbError> {
    for pause in READER_PAUSES_MS {
        match engine::check_login(spec, &settings.db).await {
            Err(e) if e.is_auth_failure() => {
                tracing::info!(host = %spec.host, port = spec.port, "the reader does not take the new password yet; waiting for replication");
                tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
            }
            other => return other,
        }
    }
    engine::check_login(spec, &settings.db).await
}

/// A single user's password changed at setSecret, so anyone still reading AWSCURRENT logged in
/// with a password the database no longer took until now: that window, as `PasswordDowntimeMs`.
/// Its start is when the password changed where the server says so and the user may read it
/// (MySQL's `password_last_changed`, the earliest of the servers), else the pending version's
/// creation (an upper bound: setSecret ran after it). Best-effort and bounded: a failed read
/// costs the metric, never the step.
async fn report_password_downtime(clients: &AwsClients, settings: &Settings, event: &RotationEvent, plan: &Plan) {
    let now = std::time::SystemTime::now();
    let started = if plan.servers.engine == EngineKind::MySql {
        let changed = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            password_last_changed(clients, settings, event, plan),
        );
        // A database clock ahead of this one gives no usable start.
        changed.await.ok().flatten().filter(|at| *at <= now).map(|at| (at, "PasswordLastChanged"))
    } else {
        None
    };
    let started = match started {
        Some(started) => Some(started),
        None => pending_created(&clients.secrets, event).await.map(|at| (at, "PendingVersionCreated")),
    };
    match started.and_then(|(at, source)| Some((now.duration_since(at).ok()?, source))) {
        Some((downtime, source)) => crate::metrics::downtime_metrics(downtime, source).emit(),
        None => {
            tracing::warn!(secret_id = %event.secret_id, "could not read when the password changed; PasswordDowntimeMs not reported")
        }
    }
}

/// The earliest `password_last_changed` of the servers, logged in as the new AWSCURRENT; `None`
/// unless every server answered it.
async fn password_last_changed(
    clients: &AwsClients,
    settings: &Settings,
    event: &RotationEvent,
    plan: &Plan,
) -> Option<std::time::SystemTime> {
    let list = plan.servers.list.as_deref();
    let results = on_each_server(event, list, settings.host_concurrency, |event| async move {
        let origin = Origin { secret_id: &event.secret_id, stage: CURRENT };
        let doc =
            require_doc(&clients.secrets, &event.secret_id, CURRENT, Some(&event.token), event.server.as_ref()).await?;
        let spec = doc.connection(origin)?;
        engine::password_changed_at(&spec, &settings.db)
            .await
            .map_err(|e| db_error(Step::FinishSecret, &event.secret_id, e))
    })
    .await;
    let mut earliest: Option<std::time::SystemTime> = None;
    for (_, result) in results {
        let at = result.ok().flatten()?;
        earliest = Some(earliest.map_or(at, |e| e.min(at)));
    }
    earliest
}

/// When the rotation's version was created (it is AWSCURRENT now), bounded by 2 s.
async fn pending_created(client: &Client, event: &RotationEvent) -> Option<std::time::SystemTime> {
    let read = client.get_secret_value().secret_id(&event.secret_id).version_id(&event.token).version_stage(CURRENT);
    let read = tokio::time::timeout(std::time::Duration::from_secs(2), read.send()).await;
    read.ok()
        .and_then(Result::ok)
        .and_then(|out| out.created_date().copied())
        .and_then(|d| std::time::SystemTime::try_from(d).ok())
}

/// finishSecret moves AWSCURRENT only to a version that can serve: it has a value of the same
/// kind as AWSCURRENT's (engine, server, and the same user or its alternate) and, for a
/// database, its credentials log in and an alternating clone holds what the original holds. A
/// pending version with no value (createSecret refused, and the steps were sent anyway) would
/// leave every reader of the secret without one. Answers whether it is a single user's database
/// rotation (whose readers saw a downtime).
async fn pending_is_ready(
    clients: &AwsClients,
    settings: &Settings,
    event: &RotationEvent,
    engine: &mut Option<EngineKind>,
) -> Result<bool, RotationError> {
    let client = &clients.secrets;
    let secret_id = &event.secret_id;
    let not_ready = |reason: String| RotationError::PendingNotReady { secret_id: secret_id.clone(), reason };
    let pending_doc = read_doc(client, secret_id, PENDING, Some(&event.token), event.server.as_ref())
        .await?
        .ok_or_else(|| not_ready("the pending version has no secret string".into()))?;
    let current_doc = require_doc(client, secret_id, CURRENT, None, event.server.as_ref()).await?;
    let pending_origin = Origin { secret_id, stage: PENDING };
    let current_origin = Origin { secret_id, stage: CURRENT };
    let kind = pending_doc.engine(pending_origin)?;
    *engine = Some(kind);
    if current_doc.engine(current_origin)? != kind {
        return Err(not_ready("its engine differs from AWSCURRENT's".into()));
    }
    let (Some(pending), Some(current)) =
        (database_connection(&pending_doc, pending_origin)?, database_connection(&current_doc, current_origin)?)
    else {
        return Ok(false);
    };
    let differ = pending.fields_that_differ(&current, false);
    if !differ.is_empty() {
        return Err(not_ready(format!("its {} differ from AWSCURRENT's", differ.join(", "))));
    }
    let pair = recorded_pair(&pending_doc, &current_doc, &current.username, secret_id).ok();
    let alternate = pair.as_ref().and_then(|pair| pair.alternate(&current.username));
    if pending.username != current.username && alternate != Some(pending.username.as_str()) {
        return Err(not_ready("its user is neither AWSCURRENT's nor its alternate".into()));
    }
    match engine::check_login(&pending, &settings.db).await {
        Ok(()) => {}
        Err(e) if e.is_auth_failure() => return Err(not_ready("its credentials do not log in".into())),
        Err(e) => return Err(db_error(Step::FinishSecret, secret_id, e)),
    }
    check_clone_parity(clients, settings, event, &pending_doc, &pending).await?;
    Ok(master_arn(settings, &pending_doc, secret_id)?.is_none())
}

async fn finish_secret(
    client: &Client,
    event: &RotationEvent,
    current_version: Option<&str>,
) -> Result<StepOutcome, RotationError> {
    let secret_id = &event.secret_id;
    client
        .update_secret_version_stage()
        .secret_id(secret_id)
        .version_stage(CURRENT)
        .move_to_version_id(&event.token)
        .set_remove_from_version_id(current_version.map(str::to_owned))
        .send()
        .await
        .map_err(|e| sm_error("UpdateSecretVersionStage", secret_id, &e))?;
    Ok(StepOutcome::MovedCurrent)
}

#[cfg(test)]
mod tests {
    use super::{check_alternation, check_user_name_fits};
    use crate::engine::{ConnectionSpec, EngineKind, TlsMode};
    use crate::pair::UserPair;
    use crate::secret::{Origin, SecretDoc};

    fn spec(host: &str, port: u16, user: &str) -> ConnectionSpec {
        ConnectionSpec {
            kind: EngineKind::Postgres,
            host: host.into(),
            port,
            username: user.into(),
            password: "p".into(),
            dbname: Some("app".into()),
            tls: TlsMode::Require,
        }
    }

    fn pair(original: &str) -> UserPair {
        UserPair { original: original.into(), clone: format!("{original}_clone") }
    }

    #[test]
    fn alternation_is_checked_before_the_master_credentials_are_used() {
        let check_alternation = |current: &ConnectionSpec, pending: &ConnectionSpec, master: &ConnectionSpec| {
            let original = current.username.strip_suffix("_clone").unwrap_or(&current.username);
            check_alternation(current, pending, master, &pair(original), false)
        };
        let master = spec("db.internal", 5432, "admin");
        let current = spec("db.internal", 5432, "app");
        assert_eq!(check_alternation(&current, &spec("DB.internal", 5432, "app_clone"), &master), Ok(()));
        let refused = |pending: ConnectionSpec, master: &ConnectionSpec| {
            check_alternation(&current, &pending, master).expect_err("refused")
        };
        assert!(refused(spec("evil.example", 5432, "app_clone"), &master).contains("host"));
        assert!(refused(spec("db.internal", 6543, "app_clone"), &master).contains("port"));
        assert!(refused(spec("db.internal", 5432, "someone_else"), &master).contains("alternate"));
        // A user secret that points at another host together with its pending version.
        let lure = spec("evil.example", 5432, "app");
        assert!(check_alternation(&lure, &spec("evil.example", 5432, "app_clone"), &master)
            .expect_err("lure")
            .contains("master secret's host"));
        // A user secret named after the master.
        let admin_clone = spec("db.internal", 5432, "admin_clone");
        assert!(check_alternation(&admin_clone, &spec("db.internal", 5432, "admin"), &master)
            .expect_err("master")
            .contains("master's own user"));
    }

    #[test]
    fn a_reader_of_the_masters_database_may_be_on_another_server_and_nothing_else_changes() {
        let master = spec("writer.internal", 5432, "admin");
        let reader = spec("replica.internal", 5433, "app");
        let clone = spec("replica.internal", 5433, "app_clone");
        assert!(check_alternation(&reader, &clone, &master, &pair("app"), false).is_err(), "not a reader: refused");
        assert_eq!(check_alternation(&reader, &clone, &master, &pair("app"), true), Ok(()));
        // The pending version must still name the same server as the current one.
        let moved = spec("elsewhere.internal", 5433, "app_clone");
        assert!(check_alternation(&reader, &moved, &master, &pair("app"), true).unwrap_err().contains("host"));
        let mysql_master = ConnectionSpec { kind: EngineKind::MySql, ..master.clone() };
        assert!(check_alternation(&reader, &clone, &mysql_master, &pair("app"), true).unwrap_err().contains("engine"));
        let admin = spec("replica.internal", 5433, "admin_clone");
        let back = spec("replica.internal", 5433, "admin");
        assert!(check_alternation(&admin, &back, &master, &pair("admin"), true)
            .unwrap_err()
            .contains("master's own user"));
    }

    #[test]
    fn clone_names_must_fit_the_engine() {
        let doc = |engine: &str| {
            SecretDoc::parse(&format!(r#"{{"engine":"{engine}"}}"#), Origin { secret_id: "s", stage: "AWSCURRENT" })
                .unwrap()
        };
        assert!(check_user_name_fits(&doc("postgres"), &"a".repeat(63)).is_ok());
        assert!(check_user_name_fits(&doc("postgres"), &"a".repeat(64)).unwrap_err().contains("63"));
        // Bytes, not characters, on PostgreSQL.
        assert!(check_user_name_fits(&doc("postgres"), &"é".repeat(32)).is_err());
        assert!(check_user_name_fits(&doc("mysql"), &"a".repeat(33)).unwrap_err().contains("32"));
        assert!(check_user_name_fits(&doc("mariadb"), &"a".repeat(80)).is_ok());
    }
}
