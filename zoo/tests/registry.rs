//! The registry as users meet it: names, presets, configs and their error texts.

use mnnn_core::config;

#[test]
fn registry_is_non_empty_and_names_are_unique() {
    let names: Vec<&str> = mnnn_zoo::entries().iter().map(|e| e.name).collect();
    assert!(!names.is_empty());
    let mut sorted = names.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "duplicate names in {names:?}");
    assert!(names.contains(&"amrc"));
}

#[test]
fn every_preset_parses_and_validates() {
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/presets"))
        .unwrap()
        .count();
    assert_eq!(
        mnnn_zoo::presets().len(),
        files,
        "every file in zoo/presets is shipped"
    );
    for (name, text) in mnnn_zoo::presets() {
        let cfg = config::parse(text, name).unwrap_or_else(|e| panic!("preset {name}: {e}"));
        assert!(mnnn_zoo::find(&cfg.model).is_ok());
    }
}

#[test]
fn default_params_round_trip() {
    for e in mnnn_zoo::entries() {
        let d = (e.default_params)();
        assert_eq!((e.parse_params)(&d).unwrap(), d, "{}", e.name);
    }
}

#[test]
fn a_misspelt_model_name_suggests_the_right_one() {
    let err = config::parse("(model: \"amcr\")", "run.ron")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("run.ron:1:2: unknown model 'amcr'; did you mean 'amrc'?"),
        "{err}"
    );
    // Every registered name, in order.
    let names: Vec<&str> = mnnn_zoo::entries().iter().map(|e| e.name).collect();
    assert!(
        err.contains(&format!("Known models: {}", names.join(", "))),
        "{err}"
    );
}

#[test]
fn an_unknown_field_gets_line_and_column() {
    let text = "(\n    model: \"amrc\",\n    params: (hidden: 8,\n        hiden: 4),\n)";
    let err = config::parse(text, "run.ron").unwrap_err().to_string();
    assert!(err.starts_with("run.ron:4:9"), "{err}");
    assert!(
        err.contains("hiden") && err.contains("hidden") && err.contains("alpha"),
        "{err}"
    );
}

#[test]
fn an_out_of_range_param_names_the_range() {
    let text = "(model: \"amrc\",\n params: (beta: 1.5))";
    let err = config::parse(text, "run.ron").unwrap_err().to_string();
    assert_eq!(
        err,
        "run.ron:2:11: invalid parameter 'beta' = 1.5: must be in [0, 1]"
    );
}

#[test]
fn the_minimal_config_is_complete() {
    let cfg = config::parse(
        "(model: \"amrc\", data: Csv(path: \"s.csv\", inputs: [\"x\"], targets: [\"y\"]))",
        "min.ron",
    )
    .unwrap();
    assert_eq!(cfg.train, mnnn_core::TrainConfig::default());
    assert_eq!(
        cfg.params,
        (mnnn_zoo::find("amrc").unwrap().default_params)()
    );
    let err = config::parse("(model: \"amrc\", train: (batch_size: 0))", "t.ron")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("t.ron:1:25") && err.contains("'batch_size' = 0"),
        "{err}"
    );
    let err = config::parse("(model: \"amrc\", trian: ())", "t.ron")
        .unwrap_err()
        .to_string();
    assert!(err.contains("t.ron:1:") && err.contains("trian"), "{err}");
}

#[test]
fn presets_are_names_wherever_a_model_name_is() {
    // Registered by the build script: every shipped file, under its stem.
    let registered: Vec<&str> = mnnn_core::preset::presets()
        .iter()
        .map(|p| p.name)
        .collect();
    let shipped: Vec<&str> = mnnn_zoo::presets().iter().map(|(s, _)| *s).collect();
    assert_eq!(registered, shipped);

    let r = mnnn_zoo::resolve("mnemosyne-delta").unwrap();
    assert_eq!((r.name, r.entry.name), ("mnemosyne-delta", "mnemosyne"));
    assert!(r.params.as_deref().unwrap().contains("chunk:1"));
    assert!(mnnn_zoo::resolve("amrc").unwrap().preset.is_none());

    // A config naming a preset gets its params and its training, and may give its own data
    // and training.
    let cfg = config::parse("(model: \"amrc-long-echo\")", "run.ron").unwrap();
    assert_eq!(cfg.model, "amrc");
    assert!(cfg.params.contains("hidden:64"), "{}", cfg.params);
    assert_eq!(cfg.train.epochs, 80);
    let cfg = config::parse(
        "(model: \"amrc-long-echo\", train: (epochs: 3), data: Csv(path: \"a.csv\", inputs: [\"x\"], targets: [\"y\"]))",
        "run.ron",
    )
    .unwrap();
    assert_eq!((cfg.train.epochs, cfg.data.is_some()), (3, true));
    assert!(cfg.params.contains("hidden:64"));
    let err = config::parse(
        "(model: \"amrc-long-echo\", params: (hidden: 4))",
        "run.ron",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("run.ron:1:27: 'amrc-long-echo' is a preset of 'amrc'"),
        "{err}"
    );

    // A misspelt preset is suggested like an entry.
    let err = config::parse("(model: \"amrc-long-ecko\")", "run.ron")
        .unwrap_err()
        .to_string();
    assert!(err.contains("did you mean 'amrc-long-echo'?"), "{err}");

    let io = mnnn_core::IoSpec::regression(2, 1);
    let m = mnnn_zoo::create::<f32>("amrc-long-echo", None, &io, 0).unwrap();
    assert_eq!(m.meta().entry, "amrc");
    assert_eq!(m.meta().params, r_params("amrc-long-echo"));
    assert!(mnnn_zoo::create::<f32>("amrc-long-echo", Some("(hidden: 4)"), &io, 0).is_err());
}

fn r_params(name: &str) -> String {
    mnnn_zoo::resolve(name).unwrap().params.unwrap()
}
