//! The `apnsblast` command: parse the command line, run it, map the result
//! to an exit status (0 every token accepted, 1 some were not, 2 the run
//! could not happen). Everything else is in `cli`, declared here and not in
//! the library, which never parses arguments, prints or exits.

use std::io;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

mod cli;

fn main() -> ExitCode {
    let matches = cli::Cli::command().get_matches();
    let args = cli::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli::note_given(&matches);
    cli::init_logging(&args.global);
    match cli::run(args) {
        Ok(exit) => exit.into(),
        Err(err) => {
            // `gen-tokens | head`: a closed pipe is the reader's choice, not a failure.
            let broken_pipe = err
                .chain()
                .filter_map(|e| e.downcast_ref::<io::Error>())
                .any(|e| e.kind() == io::ErrorKind::BrokenPipe);
            if broken_pipe {
                return ExitCode::SUCCESS;
            }
            eprintln!("apnsblast: error: {err:#}");
            ExitCode::from(2)
        }
    }
}
