//! The local stand-ins the tests, the demo and the benches run against: real protocol peers on
//! loopback, each made in one place here, started on free ports by whoever needs it and stopped
//! when its guard is dropped (and so is the Docker engine `sam local` runs on). Beside them, the
//! clients used to stage and check what they hold, and the template as SAM translates it, read
//! by a CloudFormation condition evaluator.

pub mod activemq;
#[cfg(feature = "aws-front")]
pub mod aws_front;
#[cfg(feature = "clients")]
pub mod call_counter;
pub mod certs;
pub mod cloudformation;
#[cfg(feature = "clients")]
pub mod deploy_stand_in;
pub mod docker;
#[cfg(feature = "clients")]
pub mod dynamo;
#[cfg(feature = "clients")]
pub mod ec2;
#[cfg(feature = "clients")]
pub mod forward;
#[cfg(feature = "large-messages")]
pub mod large_messages;
pub mod mariadb;
#[cfg(feature = "clients")]
pub mod messages;
pub mod moto;
#[cfg(feature = "clients")]
pub mod password_lure;
#[cfg(feature = "clients")]
pub mod pgbouncer;
pub mod postgres;
pub mod rabbitmq;
#[cfg(feature = "clients")]
pub mod rotation;
#[cfg(feature = "s3")]
pub mod s3;
#[cfg(feature = "clients")]
pub mod secrets;
pub mod server_user;
#[cfg(feature = "clients")]
pub mod stomp;
#[cfg(feature = "clients")]
pub mod stomp_peer;
#[cfg(feature = "clients")]
pub mod tls_proxy;

use std::path::PathBuf;

/// A fresh folder name for one server's (or test's) files, unique to this process and call.
pub fn scratch_dir(kind: &str) -> PathBuf {
    let unique = harness_runtime::process::free_port();
    std::env::temp_dir().join(format!("ops-suite-{kind}-{}-{unique}", std::process::id()))
}
