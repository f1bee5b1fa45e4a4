//! Lookups in a step's JSON report (`{"items": [{"id", "status", "detail", ...}],
//! "commands": [...]}`), and the report read from a run's output.

use std::process::Output;

use serde_json::Value;

use crate::Error;

/// The item of `id` in `report` (null when there is none, so that a field of it
/// compares unequal with a readable message).
pub fn item<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["items"].as_array().and_then(|items| items.iter().find(|i| i["id"] == id)).unwrap_or(&Value::Null)
}

/// The detail of the item of `id` ("" when there is none).
pub fn detail(report: &Value, id: &str) -> String {
    item(report, id)["detail"].as_str().unwrap_or_default().to_owned()
}

/// The commands the run ran to change the host.
pub fn commands(report: &Value) -> Vec<String> {
    report["commands"].as_array().into_iter().flatten().filter_map(|c| c.as_str()).map(str::to_owned).collect()
}

/// The JSON document a run printed on stdout; when there is none, an error with all
/// the run printed.
pub fn from_output(out: &Output) -> Result<Value, Error> {
    serde_json::from_slice(&out.stdout).map_err(|e| format!("no JSON ({e}):\n{}", crate::process::text(out)).into())
}
