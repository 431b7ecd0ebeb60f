//! Integration tests: the real `kiln` binary on fixture trees.

mod action;
mod bad_input;
mod budgets;
mod bundled;
mod cache;
mod cli;
mod deploy;
mod frameworks;
mod hashing;
mod idempotence;
mod images;
mod layering;
mod links;
mod memory;
mod minify;
mod node;
mod npm;
mod outputs;
mod render;
mod routes;
mod serve;
mod site;
mod sourcemaps;
mod summary;
mod util;
mod watch;
