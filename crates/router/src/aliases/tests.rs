use std::sync::Arc;

use super::*;
use crate::store::MemoryStore;

fn config() -> ModelTable {
    ModelTable::from_settings(
        Some("gpt-4o-mini=gemma,coder=qwen".parse().unwrap()),
        Some("qwen=gemma|tiny".parse().unwrap()),
    )
    .unwrap()
}

fn map(store: Arc<MemoryStore>) -> ModelMap {
    ModelMap::new(config(), store, &[])
}

#[test]
fn an_alias_resolves_to_its_model_and_other_names_to_themselves() {
    let m = map(Arc::new(MemoryStore::new()));
    let all = |_: &str| true;
    assert_eq!(
        m.resolve("gpt-4o-mini", all),
        Resolved {
            model: "gemma".into(),
            via: Some(Via::Alias)
        }
    );
    assert_eq!(
        m.resolve("gemma", all),
        Resolved {
            model: "gemma".into(),
            via: None
        }
    );
}

#[test]
fn fallbacks_are_taken_in_order_only_when_the_model_is_not_usable() {
    let m = map(Arc::new(MemoryStore::new()));
    // qwen ready: served by qwen (through the alias).
    assert_eq!(m.resolve("coder", |_| true).model, "qwen");
    // qwen not ready: its first usable fallback.
    let r = m.resolve("coder", |x| x != "qwen");
    assert_eq!((r.model.as_str(), r.via), ("gemma", Some(Via::Fallback)));
    let r = m.resolve("qwen", |x| x == "tiny");
    assert_eq!(r.model, "tiny");
    // Nothing usable: the model itself (it may come up while the request waits).
    let r = m.resolve("coder", |_| false);
    assert_eq!((r.model.as_str(), r.via), ("qwen", Some(Via::Alias)));
}

#[tokio::test]
async fn the_api_layer_checks_its_entries_and_overrides_the_config() {
    let store = Arc::new(MemoryStore::new());
    let m = map(Arc::clone(&store));
    {
        m.set_alias("gpt-4o-mini", "tiny").await.unwrap();
        assert_eq!(m.resolve("gpt-4o-mini", |_| true).model, "tiny");
        assert!(matches!(
            m.set_alias("chain", "coder").await,
            Err(AliasError::Invalid(_))
        ));
        assert!(matches!(
            m.set_alias("gemma", "x").await,
            Err(AliasError::Invalid(_))
        ));
        assert!(matches!(
            m.set_alias("bad\nname", "x").await,
            Err(AliasError::Invalid(_))
        ));
        assert!(matches!(
            m.remove_alias("coder").await,
            Err(AliasError::FromConfig(_))
        ));
        assert!(matches!(
            m.set_fallbacks("m", &["m".into()]).await,
            Err(AliasError::Invalid(_))
        ));
        m.set_fallbacks("gemma", &["tiny".into()]).await.unwrap();
        // Stored: a map opened on the store's settings has them.
        let settings = store.credentials(0).await.unwrap().settings;
        let reopened = ModelMap::new(config(), store.clone(), &settings);
        assert_eq!(reopened.resolve("gpt-4o-mini", |_| true).model, "tiny");
        assert_eq!(reopened.resolve("gemma", |x| x == "tiny").model, "tiny");
        let views = reopened.aliases();
        assert_eq!(views.len(), 2);
        assert!(
            views
                .iter()
                .any(|v| v.name == "gpt-4o-mini" && v.source == "api")
        );
        reopened.remove_alias("gpt-4o-mini").await.unwrap();
        assert_eq!(reopened.resolve("gpt-4o-mini", |_| true).model, "gemma");
    }
}

#[test]
fn config_values_are_parsed_from_flags() {
    assert!("a".parse::<ModelAliases>().is_err());
    let f: ModelFallbacks = "x=a|b, y=c".parse().unwrap();
    assert_eq!(f.0["x"], vec!["a".to_owned(), "b".to_owned()]);
    assert!(ModelTable::from_settings(Some("a=a".parse().unwrap()), None).is_err());
}

#[test]
fn the_tables_are_bounded() {
    let none = ModelTable::default();
    let mut table = ModelTable::default();
    for i in 0..table::MAX_ALIASES {
        table.set_alias(&format!("a{i}"), "m", &none).unwrap();
    }
    assert!(table.set_alias("one-more", "m", &none).is_err());
    // Replacing an existing one is still allowed.
    table.set_alias("a0", "n", &none).unwrap();
    let long = "x".repeat(llm_router_common::text::MAX_NAME + 1);
    assert!(ModelTable::default().set_alias(&long, "m", &none).is_err());
    let nine: Vec<String> = (0..9).map(|i| format!("f{i}")).collect();
    assert!(ModelTable::default().set_fallbacks("m", &nine).is_err());
    assert!(ModelTable::default().set_fallbacks("m", &nine[..8]).is_ok());
    assert!(
        ModelTable::default()
            .set_fallbacks("m", &["f".into(), "f".into()])
            .is_err()
    );
}
