//! What every function of the suite shares, and nothing more: logging and AWS SDK configuration.

pub mod aws;
pub mod logging;
