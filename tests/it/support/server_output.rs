//! A server process's stdout (its request logs), drained line by line into a file so that the
//! pipe never fills, with the address of its "listening on" line passed back. Shared by the
//! tests' server processes and the benchmarks' (which include this file by its path).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::process::ChildStdout;
use std::sync::mpsc;

/// Drains `stdout` into `out` on a thread of its own; the receiver gets the server's address.
pub fn drain(stdout: ChildStdout, mut out: Option<File>) -> mpsc::Receiver<String> {
    let (found, address) = mpsc::channel();
    std::thread::spawn(move || {
        let mut found = Some(found);
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on ").nth(1)
                && let Some(sender) = found.take()
            {
                let _ = sender.send(rest.split_whitespace().next().unwrap_or("").to_owned());
            }
            if let Some(out) = out.as_mut() {
                let _ = writeln!(out, "{line}");
            }
        }
    });
    address
}
