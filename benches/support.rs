//! What the benchmarks that run servers in their own processes share.

/// A server process, killed when dropped.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a server and returns it with the address it printed first (the word after
/// `marker` on its first line that has it).
pub fn start(mut command: std::process::Command, marker: &str) -> (Child, String) {
    use std::io::BufRead;
    let mut child = Child(
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("start a server"),
    );
    let mut lines = std::io::BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    loop {
        let line = lines.next().expect("a line").expect("utf-8");
        if let Some(rest) = line.split(marker).nth(1) {
            let addr = rest.split_whitespace().next().unwrap_or("").to_owned();
            // Keep reading its output so that it never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return (child, addr);
        }
    }
}

/// Signs up the bench organization (`bench`, owner `owner@bench.test`) on the server at
/// `base` and returns the answer: the owner's session, with `access_token` and `user`.
#[allow(dead_code)] // not every benchmark that shares this file signs up
pub async fn sign_up(client: &reqwest::Client, base: &str) -> serde_json::Value {
    client
        .post(format!("{base}/auth/signup"))
        .json(&serde_json::json!({
            "organization_name": "Bench Title", "organization_slug": "bench",
            "email": "owner@bench.test", "name": "Owner",
            "password": "correct horse battery staple"}))
        .send()
        .await
        .expect("signup")
        .json()
        .await
        .expect("json")
}
