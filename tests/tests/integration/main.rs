//! weir's integration tests: real plugins built from source, run through
//! real pipelines on real files. One binary, one shared engine.

mod bad_input;
mod cache;
mod canary;
mod checkpoint;
mod cli;
mod contract_v0_2;
mod corrupt_files;
mod csv_options;
mod dag;
mod dedupe_ttl;
mod dev;
mod first_hour;
mod formats;
mod fuzz_seeds;
mod http_poll;
mod kafka;
mod languages;
mod late_selection;
mod malformed;
mod manifest_errors;
mod manifest_reload;
mod nested_sinks;
mod observe;
mod parallel;
mod plugins;
mod ports;
mod postgres;
mod postgres_source;
mod process;

mod quickstart;
mod refresh;
mod reload;
mod sandbox;
mod sdk_ports;
mod sdk_types;
mod sql;
mod sqlite;
mod state_store;
mod streaming;
mod tiers;
mod windows_store;
