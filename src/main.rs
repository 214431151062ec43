use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = diemdanh::cli::Cli::parse();
    match diemdanh::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}
