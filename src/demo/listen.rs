//! Where `strangler demo` listens: its flags, else the environment the operator CLI reads too
//! (`STRANGLER_ADMIN`), so a shell that points the CLI somewhere runs the demo there as well.

use std::net::SocketAddr;

use crate::control::client::{AdminUrl, ADMIN_ENV};

/// The public listener when neither `--listen` nor [`LISTEN_ENV`] says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// The admin listener when neither `--admin` nor [`ADMIN_ENV`] says (the CLI's default too).
pub const DEFAULT_ADMIN: &str = "127.0.0.1:9090";
/// The demo's public listener, `host:port`, when `--listen` is not given.
pub const LISTEN_ENV: &str = "STRANGLER_DEMO_LISTEN";

/// The demo's two listeners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoAddrs {
    pub listen: SocketAddr,
    pub admin: SocketAddr,
}

impl DemoAddrs {
    /// Flags first, then `STRANGLER_DEMO_LISTEN` (`host:port`) and `STRANGLER_ADMIN`
    /// (`http://host:port`, as the CLI reads it; the host must be an IP address), then the
    /// defaults. An unset or blank variable counts as absent.
    pub fn choose(
        listen: Option<SocketAddr>,
        admin: Option<SocketAddr>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        let env = |var: &str| env(var).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let listen = match (listen, env(LISTEN_ENV)) {
            (Some(a), _) => a,
            (None, Some(v)) => v.parse().map_err(|_| {
                format!("{LISTEN_ENV}: expected host:port with an IP address, e.g. {DEFAULT_LISTEN}, found `{v}`")
            })?,
            (None, None) => DEFAULT_LISTEN.parse().expect("valid default"),
        };
        let admin = match (admin, env(ADMIN_ENV)) {
            (Some(a), _) => a,
            (None, Some(v)) => {
                let expected = format!(
                    "{ADMIN_ENV}: expected http://host:port with an IP address, e.g. http://{DEFAULT_ADMIN}, found `{v}`"
                );
                let url = AdminUrl::parse(&v, ADMIN_ENV).map_err(|_| expected.clone())?;
                url.as_str().trim_start_matches("http://").parse().map_err(|_| expected)?
            }
            (None, None) => DEFAULT_ADMIN.parse().expect("valid default"),
        };
        Ok(Self { listen, admin })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose(listen: Option<&str>, admin: Option<&str>, vars: &[(&str, &str)]) -> Result<DemoAddrs, String> {
        let vars: Vec<(String, String)> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let env = move |k: &str| vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        DemoAddrs::choose(listen.map(|a| a.parse().unwrap()), admin.map(|a| a.parse().unwrap()), &env)
    }

    fn addrs(listen: &str, admin: &str) -> DemoAddrs {
        DemoAddrs { listen: listen.parse().unwrap(), admin: admin.parse().unwrap() }
    }

    #[test]
    fn defaults_then_environment_then_flags() {
        assert_eq!(choose(None, None, &[]), Ok(addrs("127.0.0.1:8080", "127.0.0.1:9090")));
        let vars = [("STRANGLER_DEMO_LISTEN", "127.0.0.1:18080"), ("STRANGLER_ADMIN", "http://127.0.0.1:19090")];
        assert_eq!(choose(None, None, &vars), Ok(addrs("127.0.0.1:18080", "127.0.0.1:19090")));
        assert_eq!(choose(Some("127.0.0.1:1"), Some("127.0.0.1:2"), &vars), Ok(addrs("127.0.0.1:1", "127.0.0.1:2")));
        assert_eq!(
            choose(None, None, &[("STRANGLER_ADMIN", " "), ("STRANGLER_DEMO_LISTEN", "")]),
            Ok(addrs("127.0.0.1:8080", "127.0.0.1:9090"))
        );
    }

    #[test]
    fn a_bad_variable_is_named() {
        let e = choose(None, None, &[("STRANGLER_ADMIN", "http://localhost:9090")]).unwrap_err();
        assert!(e.starts_with("STRANGLER_ADMIN: expected http://host:port") && e.contains("localhost"), "{e}");
        let e = choose(None, None, &[("STRANGLER_ADMIN", "127.0.0.1:9090")]).unwrap_err();
        assert!(e.starts_with("STRANGLER_ADMIN: "), "{e}");
        let e = choose(None, None, &[("STRANGLER_DEMO_LISTEN", "nope")]).unwrap_err();
        assert!(e.starts_with("STRANGLER_DEMO_LISTEN: expected host:port"), "{e}");
    }
}
