//! A small network of Linux network namespaces standing for separate machines: one for the
//! router, holding a bridge at `10.77.0.1/24`, and one per node machine, each joined to the
//! bridge by a veth pair and addressed `10.77.0.(10 + i)/24`. The addresses exist only inside
//! these namespaces; their names carry the test's pid, so parallel runs do not meet. Every
//! process left in them is killed and the namespaces deleted on drop, panic or not.

use std::process::{Command, Output, Stdio};

use anyhow::{Context, bail};

/// The router machine's address.
pub const ROUTER_IP: &str = "10.77.0.1";

/// The address of node machine `i` (0-based).
pub fn node_ip(i: usize) -> String {
    format!("10.77.0.{}", 10 + i)
}

/// The namespaces, deleted on drop.
pub struct Network {
    pub router: String,
    pub nodes: Vec<String>,
    created: Vec<String>,
}

/// Runs `ip ARGS`; an error with its stderr when it fails.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("cannot run `ip` (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

impl Network {
    /// Builds the router namespace and `nodes` node namespaces named `llmr-<tag>-<pid>-…`.
    pub fn build(tag: &str, nodes: usize) -> anyhow::Result<Network> {
        let base = format!("llmr-{tag}-{}", std::process::id());
        let mut net = Network {
            router: format!("{base}-r"),
            nodes: (0..nodes).map(|i| format!("{base}-n{i}")).collect(),
            created: Vec::new(),
        };
        let r = net.router.clone();
        ip(&["netns", "add", &r])?;
        net.created.push(r.clone());
        ip(&["-n", &r, "link", "set", "lo", "up"])?;
        ip(&["-n", &r, "link", "add", "br0", "type", "bridge"])?;
        ip(&[
            "-n",
            &r,
            "addr",
            "add",
            &format!("{ROUTER_IP}/24"),
            "dev",
            "br0",
        ])?;
        ip(&["-n", &r, "link", "set", "br0", "up"])?;
        for (i, ns) in net.nodes.clone().iter().enumerate() {
            ip(&["netns", "add", ns])?;
            net.created.push(ns.clone());
            let port = format!("v{i}");
            ip(&[
                "-n", &r, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", ns,
            ])?;
            ip(&["-n", &r, "link", "set", &port, "master", "br0", "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{}/24", node_ip(i)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", ns, "link", "set", "eth0", "up"])?;
        }
        Ok(net)
    }

    /// `ip netns exec NS sh -c SCRIPT`, its output.
    pub fn sh(&self, ns: &str, script: &str) -> anyhow::Result<Output> {
        Ok(Command::new("ip")
            .args(["netns", "exec", ns, "sh", "-c", script])
            .stdin(Stdio::null())
            .output()?)
    }

    /// The TCP listeners in `ns` (`ss -ltnH`), as `address:port` strings.
    pub fn listeners(&self, ns: &str) -> anyhow::Result<Vec<String>> {
        let out = self.sh(ns, "ss -ltnH")?;
        if !out.status.success() {
            bail!("ss failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8(out.stdout)?
            .lines()
            .filter_map(|l| l.split_whitespace().nth(3).map(str::to_owned))
            .collect())
    }

    /// Pids of the processes in `ns`.
    pub fn pids(ns: &str) -> Vec<u32> {
        Command::new("ip")
            .args(["netns", "pids", ns])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for ns in self.created.iter().rev() {
            for pid in Network::pids(ns) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
            if let Err(e) = ip(&["netns", "del", ns]) {
                eprintln!("cleanup: {e}");
            }
        }
    }
}
