//! Rebuilds the broker when a migration is added or changed: `sqlx::migrate!` embeds
//! the `migrations/` directories at compile time, and cargo does not otherwise see a
//! new file in them, so an incremental build would start a broker without it.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
