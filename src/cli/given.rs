//! Which flags were typed on the command line, as opposed to taken from
//! their defaults: a flag of the transport not in use is refused by name
//! even where it has a default.

use std::collections::HashSet;
use std::sync::OnceLock;

use clap::ArgMatches;
use clap::parser::ValueSource;

/// The flags typed on the command line (clap ids), as opposed to defaults.
static GIVEN: OnceLock<HashSet<String>> = OnceLock::new();

/// Notes which of the subcommand's flags were typed, so that a flag of the
/// transport not in use can be refused by name even where it has a default.
pub fn note_given(matches: &ArgMatches) {
    let mut given = HashSet::new();
    if let Some((_, sub)) = matches.subcommand() {
        for id in sub.ids() {
            if sub.value_source(id.as_str()) == Some(ValueSource::CommandLine) {
                given.insert(id.as_str().to_owned());
            }
        }
    }
    let _ = GIVEN.set(given);
}

/// Whether the flag with clap id `id` was typed on the command line.
pub fn given(id: &str) -> bool {
    GIVEN.get().is_some_and(|g| g.contains(id))
}
