//! Local development: [`watch`] rebuilds on every change, keeping what it
//! can between builds, and [`serve`] serves the output as the CDN will.

pub mod serve;
pub mod watch;
