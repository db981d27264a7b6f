//! Values that would hang or crash `decision` are refused at start, with
//! one line naming the flag or the key, and status 2.

use std::process::Command;

fn decision(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_decision"))
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(args)
        .env_remove("TICKWIRE_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn values_that_would_hang_or_crash_are_refused_naming_them() {
    for (args, named) in [
        (&["--fixture-rate", "0"][..], "--fixture-rate"),
        (&["--fixture-rate", "some"][..], "--fixture-rate"),
        (&["--fixture-rate=-3"][..], "--fixture-rate"),
        (&["--fixture-rate", "NaN"][..], "--fixture-rate"),
        (&["--checkpoint-every", "0"][..], "--checkpoint-every"),
    ] {
        let (code, err) = decision(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains(named), "{args:?}: {err}");
    }
    let yaml = std::env::temp_dir().join(format!("tickwire-desk-flags-{}.yaml", std::process::id()));
    std::fs::write(&yaml, "wire:\n  health_check_interval_s: 18446744073709551615\n").unwrap();
    let (code, err) = decision(&["--config", yaml.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("wire.health_check_interval_s"), "{err}");
}
