use super::*;

fn file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vbridge-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn env(vars: &[(&str, &str)]) -> EnvLayer {
    EnvLayer::from_vars(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))).unwrap()
}

fn load(file: Option<&Path>, vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    Settings::layered(file, env(vars))
}

#[test]
fn defaults_then_the_file_then_the_environment() {
    let toml = file("layers.toml", "listen = \"0.0.0.0:9000\"\nmax_in_flight = 8\ntask_queue = \"from-file\"\n");
    let s = load(Some(&toml), &[("max_in_flight", "16"), ("task_queue", "  ")]).unwrap();
    assert_eq!(s.temporal_address, "127.0.0.1:7233", "no layer sets it: the default");
    assert_eq!(s.listen, "0.0.0.0:9000", "the file over the default");
    assert_eq!(s.max_in_flight, 16, "the environment over the file, a number read from text");
    assert_eq!(s.task_queue, "from-file", "a blank variable counts as unset");
    let s = load(None, &[]).unwrap();
    assert_eq!((s.listen.as_str(), s.max_in_flight, s.ats_kind.as_str()), ("127.0.0.1:8080", 1024, "generic"));
}

#[test]
fn a_secret_comes_from_its_file_unless_the_variable_is_set() {
    let secret = file("api-token", "  token-from-file\n");
    let path = secret.display().to_string();
    let s = load(None, &[("api_token_file", &path)]).unwrap();
    assert_eq!(s.api_token.map(|t| t.0).as_deref(), Some("token-from-file"), "trimmed");
    let s = load(None, &[("api_token", "plain"), ("api_token_file", &path)]).unwrap();
    assert_eq!(s.api_token.map(|t| t.0).as_deref(), Some("plain"), "the variable itself wins");
    let Err(ConfigError::Env { var, problem }) =
        EnvLayer::from_vars([("webhook_secrets_file".to_owned(), "/nonexistent/secret".to_owned())])
    else {
        panic!("an unreadable _FILE is an error");
    };
    assert_eq!(var, "VBRIDGE_WEBHOOK_SECRETS");
    assert!(problem.starts_with("VBRIDGE_WEBHOOK_SECRETS_FILE (/nonexistent/secret): "), "{problem}");
    // Only secrets have a _FILE form.
    let s = load(None, &[("listen_file", &path)]).unwrap();
    assert_eq!(s.listen, "127.0.0.1:8080");
}

#[test]
fn a_list_is_comma_separated_in_a_variable_or_an_array_in_the_file() {
    let s = load(None, &[("webhook_secrets", "one, ,two ,"), ("lever_tag_fields", "a,b")]).unwrap();
    let secrets: Vec<String> = s.webhook_secrets.unwrap().into_iter().map(|r| r.0).collect();
    assert_eq!(secrets, ["one", "two"]);
    assert_eq!(s.lever_tag_fields, ["a", "b"]);
    let toml = file("list.toml", "webhook_secrets = [\"x\", \"y\"]\n");
    let s = load(Some(&toml), &[]).unwrap();
    assert_eq!(s.webhook_secrets.unwrap().len(), 2);
    assert_eq!(s.lever_tag_fields, ["verification_state"], "the default list");
}

#[test]
fn an_error_names_the_offending_key_and_its_source() {
    let e = load(None, &[("max_in_flight", "lots")]).err().expect("not a number");
    assert!(matches!(&e, ConfigError::Env { var, .. } if var == "VBRIDGE_MAX_IN_FLIGHT"), "{e}");
    assert_eq!(e.to_string(), "VBRIDGE_MAX_IN_FLIGHT: \"lots\" is not a number");
    let toml = file("bad.toml", "request_timeout_ms = \"soon\"\n");
    let e = load(Some(&toml), &[]).err().expect("not a number");
    assert!(e.to_string().ends_with("bad.toml: request_timeout_ms: \"soon\" is not a number"), "{e}");
    let toml = file("unknown.toml", "lisen = \"x\"\n");
    let e = load(Some(&toml), &[]).err().expect("an unknown key");
    assert!(e.to_string().contains("lisen"), "{e}");
    let toml = file("syntax.toml", "listen = \n");
    let e = load(Some(&toml), &[]).err().expect("not TOML");
    assert!(e.to_string().starts_with("config file "), "{e}");
    let e = Settings::layered(Some(Path::new("/nonexistent/vbridge.toml")), env(&[])).err().unwrap();
    assert!(e.to_string().starts_with("cannot read config file /nonexistent/vbridge.toml"), "{e}");
}

#[test]
fn the_variables_read_are_the_fields_of_the_settings() {
    let keys = keys();
    assert!(keys.len() > 40 && keys.contains(&"listen") && keys.contains(&"lever_tag_fields"), "{keys:?}");
    for secret in SECRET_KEYS {
        assert!(keys.contains(secret), "{secret}");
    }
}

#[test]
fn escalations_are_signed_with_a_secret_of_their_own() {
    let base = [("webhook_secrets", "provider-secret"), ("ats_url", "http://127.0.0.1:9")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let vars: Vec<_> = base.iter().chain(extra).copied().collect();
        crate::config::Config::settle(load(None, &vars).unwrap(), false)
    };
    let Err(ConfigError::Invalid { name, .. }) = with(&[("escalation_url", "https://esc.example/hook")]) else {
        panic!("an escalation URL without a secret must refuse to start");
    };
    assert_eq!(name, "VBRIDGE_ESCALATION_SECRET");
    let Err(ConfigError::Invalid { name, problem }) =
        with(&[("escalation_url", "https://esc.example/hook"), ("escalation_secret", "provider-secret")])
    else {
        panic!("a provider's secret must not sign escalations");
    };
    assert_eq!(name, "VBRIDGE_ESCALATION_SECRET", "{problem}");
    let cfg =
        with(&[("escalation_url", "https://esc.example/hook"), ("escalation_secret", "escalation-only")]).unwrap();
    assert!(cfg.escalation_secret.is_some());
    assert!(with(&[]).unwrap().escalation_secret.is_none(), "no URL: nothing is sent, no secret needed");
}
