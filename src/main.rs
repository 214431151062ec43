use clap::Parser;

fn main() -> std::process::ExitCode {
    limit_allocator_caches();
    let cli = diemdanh::cli::Cli::parse();
    match diemdanh::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// glibc keeps freed memory for reuse: one arena per thread up to 8 per core, and a threshold
/// for handing big blocks straight back to the kernel that grows with the biggest block freed.
/// A password hash (19 MiB) or a pull page freed on a blocking thread would stay resident in
/// that thread's arena. Two arenas and a fixed 1 MiB threshold keep the server's footprint
/// close to what it uses; big blocks are few, so mapping them each time costs little.
fn limit_allocator_caches() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before any other thread starts.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}
