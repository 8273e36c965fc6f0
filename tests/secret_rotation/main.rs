//! secret-rotation against moto's Secrets Manager (and RDS) and throwaway PostgreSQL and MariaDB
//! servers with password authentication and TLS. moto cannot drive a rotation (RotateSecret needs
//! Docker to run the function), so each test does what Secrets Manager does: it marks a new
//! version AWSPENDING, calls the four steps in order, and clears AWSPENDING after finishSecret.
//!
//! - `postgres`: single and alternating users, strategies, failures mid-rotation, clones.
//! - `mariadb`: the same for MySQL/MariaDB, with a hostile user name.
//! - `parity`: alternating clones hold exactly what the original holds, or are not promoted;
//!   the invocation's deadline.
//! - `pgbouncer`: the same through PgBouncer, in session and transaction pooling.
//! - `hosts`: secrets listing several servers; rollback, kills and deadlines half-way.
//! - `generic`: secrets with no database behind them.
//! - `refusals`: unusable events and secrets, and hostile ones aimed at the master.
//! - `readers`: a read replica of the master's database as the user's host.
//! - `tls`: the shipped roots, and a certificate that cannot be verified.
//! - `rds`: master secrets that RDS manages, found through the RDS API.
//!
//! The scene, steps and log capture they share are in `harness_fixtures::secret_rotation`; the
//! secrets and database users in `harness_services::secrets`.

mod generic;
mod hosts;
mod mariadb;
mod parity;
mod pgbouncer;
mod postgres;
mod rds;
mod readers;
mod refusals;
mod tls;
