//! Events on stdout: one JSON object per line (default) or the same as readable lines
//! (`--human`), handed to stdout as they happen. A reader that stops reading does not stall
//! the node: see [`crate::stdout_sink`].

use serde_json::{Map, Value, json};

use crate::stdout_sink::sink;

/// Where events go. Cheap to clone; lines from several tasks never interleave.
#[derive(Clone)]
pub(crate) struct Output {
    human: bool,
}

impl Output {
    /// Prints JSON lines, or readable lines when `human`.
    pub(crate) fn new(human: bool) -> Output {
        Output { human }
    }

    /// Whether events print as readable lines.
    pub(crate) fn is_human(&self) -> bool {
        self.human
    }

    /// Prints one event. `event` must be a JSON object with an `"event"` field.
    pub(crate) fn emit(&self, event: &Value) {
        let line = if self.human {
            human_line(event)
        } else {
            event.to_string()
        };
        print_line(line);
    }

    /// Prints a free-form line (only in human mode; JSON mode prints events only).
    pub(crate) fn say(&self, text: &str) {
        if self.human {
            print_line(text.to_owned());
        }
    }

    /// Prints the one `error` event of a failed run.
    pub(crate) fn error(&self, what: &str) {
        self.emit(&json!({ "event": "error", "what": what }));
    }

    /// Waits until everything printed so far has been written to stdout; called before the
    /// process exits.
    pub(crate) fn drain() {
        sink().drain();
    }
}

fn print_line(line: String) {
    let mut bytes = line.into_bytes();
    bytes.push(b'\n');
    sink().write_line(bytes);
}

/// `event: key=value key=value` with strings unquoted and lists comma-separated.
fn human_line(event: &Value) -> String {
    let Some(object) = event.as_object() else {
        return event.to_string();
    };
    let name = object
        .get("event")
        .and_then(Value::as_str)
        .unwrap_or("event");
    let mut line = format!("{name}:");
    append_fields(&mut line, object);
    line
}

fn append_fields(line: &mut String, object: &Map<String, Value>) {
    for (key, value) in object.iter().filter(|(k, _)| k.as_str() != "event") {
        line.push(' ');
        line.push_str(key);
        line.push('=');
        line.push_str(&plain(value));
    }
}

fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(plain).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_lines_are_readable() {
        let line = human_line(&json!({"event":"ping","peer":"12D3","rtt_ms":0.5}));
        assert_eq!(line, "ping: peer=12D3 rtt_ms=0.5");
        let line = human_line(&json!({"event":"listening","addrs":["/a","/b"]}));
        assert_eq!(line, "listening: addrs=[/a, /b]");
    }
}
