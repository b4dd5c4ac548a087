//! Refusing, with a clear 400, requests the model cannot serve (images for a text-only model,
//! tools without a tool-capable template, embeddings from a runtime started without them). The
//! runtime would fail them with a 500, which the router would take for a broken node.

use serde_json::Value;

use super::NodeApiError;
use crate::runtime::ModelRuntime;

pub fn check(path: &str, request: &Value, runtime: &ModelRuntime) -> Result<(), NodeApiError> {
    let refuse = |what: &'static str| NodeApiError::NotCapable {
        model: runtime.name().to_owned(),
        what,
    };
    if path == "/v1/embeddings" {
        return if runtime.can("embedding") {
            Ok(())
        } else {
            Err(refuse("embeddings"))
        };
    }
    if has_images(request) && !runtime.can("vision") {
        return Err(refuse("images"));
    }
    if request["tools"].as_array().is_some_and(|t| !t.is_empty()) && !runtime.can("tools") {
        return Err(refuse("tools"));
    }
    Ok(())
}

/// True when a chat message carries an image content part.
fn has_images(request: &Value) -> bool {
    request["messages"].as_array().is_some_and(|messages| {
        messages.iter().any(|m| {
            m["content"]
                .as_array()
                .is_some_and(|parts| parts.iter().any(|p| p["type"] == "image_url"))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_parts_are_found_in_any_message() {
        assert!(has_images(&json!({"messages": [
            {"role": "system", "content": "x"},
            {"role": "user", "content": [{"type": "text", "text": "?"},
                                         {"type": "image_url", "image_url": {"url": "data:"}}]}
        ]})));
        assert!(!has_images(
            &json!({"messages": [{"role": "user", "content": "image_url"}]})
        ));
        assert!(!has_images(&json!({"prompt": "x"})));
    }
}
