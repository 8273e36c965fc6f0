//! The local-services harness: real protocol peers on loopback, each started on a free port by
//! the test that needs it and stopped when its guard is dropped.

pub mod activemq;
pub mod call_counter;
pub mod cargo_lambda;
pub mod certs;
pub mod ec2;
pub mod moto;
pub mod mq;
pub mod mariadb;
pub mod postgres;
pub mod paths;
pub mod process;
pub mod runtime_api;
pub mod secrets;
