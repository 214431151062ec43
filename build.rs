// The migrations are embedded in the binary (`embed_migrations!`): a new migration directory
// must rebuild the crate, which cargo would not notice on its own.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
