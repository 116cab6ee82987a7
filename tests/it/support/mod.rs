//! Shared integration-test support: the Tansu broker harness and Kafka helpers.

#![allow(dead_code, unused_imports)]

pub mod broker;
pub mod kafka;
pub mod relay;
pub mod replica;
pub mod stunnel;

pub use broker::{free_port, tansu_bin, Tansu};
pub use kafka::{consume, create_topic, drain, header};
pub mod wire;
