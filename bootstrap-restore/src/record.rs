//! The resume record (`~/.local/state/pi-bootstrap/restore.json`): the step where the
//! last restore stopped on a failure, `{"stopped_at": "bootstrap-services"}`. Written
//! when a step fails, never when one says the manifest or the command line is wrong
//! (exit 2); removed once a run gets past the recorded step to the end. A record that
//! cannot be read as one is an error naming the file, never taken as "no record".

use common::state::{StateDir, StateError};
use common::step::StepError;
use serde::{Deserialize, Serialize};

use crate::{ChainError, STEPS, position, step_names};

/// The record's file in the state folder.
pub const RECORD_FILE: &str = "restore.json";

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    stopped_at: String,
}

/// The index in [`STEPS`] of the step the last restore stopped at; `None` when no
/// restore stopped.
pub fn read(state: &StateDir) -> Result<Option<usize>, StepError> {
    let corrupt = |reason: String| ChainError::CorruptRecord { path: state.file(RECORD_FILE), reason };
    let read = state.read_json::<Record>(RECORD_FILE).map_err(|e| match e {
        StateError::Corrupt { why, .. } => StepError::from(corrupt(why)),
        other => other.into(),
    });
    let Some(record) = read? else { return Ok(None) };
    let index = position(&record.stopped_at).ok_or_else(|| {
        corrupt(format!("it names {:?}, which is no step of the restore ({})", record.stopped_at, step_names()))
    })?;
    Ok(Some(index))
}

/// Records that the restore stopped at `STEPS[index]`.
pub fn write(state: &StateDir, index: usize) -> Result<(), StepError> {
    let bin = STEPS.get(index).map_or("", |s| s.bin);
    Ok(state.write_json(RECORD_FILE, &Record { stopped_at: bin.to_owned() })?)
}

/// Removes the record: the restore got past where it stopped.
pub fn remove(state: &StateDir) -> Result<(), StepError> {
    Ok(state.remove(RECORD_FILE)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_read_back_and_a_corrupt_one_is_an_error_naming_it() -> Result<(), Box<dyn std::error::Error>> {
        let home = tempfile::tempdir()?;
        let state = StateDir::new(home.path());
        assert_eq!(read(&state)?, None);
        write(&state, 2)?;
        assert_eq!(
            std::fs::read_to_string(state.file(RECORD_FILE))?,
            "{\n  \"stopped_at\": \"bootstrap-services\"\n}\n"
        );
        assert_eq!(read(&state)?, Some(2));
        for corrupt in ["", "{", "{\"stopped_at\": 3}", "{\"stopped_at\": \"bootstrap-nothing\"}", "[]"] {
            state.write(RECORD_FILE, corrupt.as_bytes())?;
            let message = read(&state).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(message.contains(&state.file(RECORD_FILE).display().to_string()), "{corrupt:?}: {message}");
            assert!(message.contains("corrupt"), "{corrupt:?}: {message}");
        }
        remove(&state)?;
        remove(&state)?;
        assert_eq!(read(&state)?, None);
        Ok(())
    }
}
