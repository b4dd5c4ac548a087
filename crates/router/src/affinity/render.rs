//! The parts of a request that make its prompt (OpenAI chat and completions, the Responses API,
//! Anthropic's messages, Ollama's chat and generate), read straight from the body's bytes (or from a
//! parsed [`Value`], through the same types) and rendered into a [`BlockWriter`].
//!
//! Strings are borrowed from the body where it has no escapes and everything else is skipped
//! unparsed, so keying a 16 KB chat costs one scan of the body and no allocation per field. Every
//! field is lenient: a value of an unexpected type renders as nothing instead of failing the whole
//! key (the node judges the request; the key only steers it).
//!
//! The rendering, per chat message: its role, [`UNIT`], its content (a string, or each part's text
//! or, for an image or other media, its type and reference, each part followed by [`UNIT`]), then
//! per tool call [`UNIT`] name [`UNIT`] arguments, and [`RECORD`]. A completion prompt is its text,
//! each token id as 4 bytes, each string of a list followed by [`RECORD`].

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::prompt::BlockWriter;

/// Separates a message's role from its content, and the parts of a content.
pub(super) const UNIT: &[u8] = b"\x1f";
/// Ends a message (or one prompt of a list).
pub(super) const RECORD: &[u8] = b"\x1e";

/// The prompt fields of an inference body: OpenAI chat and completions, the Responses API,
/// Anthropic's messages, Ollama chat and generate.
#[derive(Deserialize)]
pub(super) struct PromptFields<'a> {
    #[serde(default, borrow)]
    pub messages: Option<Messages<'a>>,
    #[serde(default, borrow)]
    pub prompt: Option<PromptPart<'a>>,
    /// Ollama's `/api/generate` system prompt, rendered before its prompt; Anthropic's (text or
    /// blocks), before its messages.
    #[serde(default, borrow)]
    pub system: Content<'a>,
    /// The Responses API's input: text, or items (messages).
    #[serde(default, borrow)]
    pub input: Option<Input<'a>>,
    /// The Responses API's system prompt.
    #[serde(default, borrow)]
    pub instructions: Text<'a>,
}

impl PromptFields<'_> {
    /// Renders the prompt as the chat it is (the Responses API's `instructions` and Anthropic's
    /// `system` as a first system message); `false` when the body has none.
    pub fn render(&self, w: &mut BlockWriter) -> bool {
        if let Some(input) = &self.input {
            if let Some(instructions) = &self.instructions.0 {
                render_message(
                    w,
                    "system",
                    &Content::Text(Cow::Borrowed(instructions)),
                    &[],
                );
            }
            match input {
                Input::Text(text) => {
                    render_message(w, "user", &Content::Text(Cow::Borrowed(text)), &[]);
                }
                Input::Items(Messages(items)) => items.iter().for_each(|m| m.render(w)),
            }
            return true;
        }
        match (&self.messages, &self.prompt) {
            (Some(Messages(messages)), _) => {
                if !matches!(self.system, Content::None) {
                    render_message(w, "system", &self.system, &[]);
                }
                messages.iter().for_each(|m| m.render(w));
            }
            (None, Some(prompt)) => match &self.system {
                Content::Text(system) => {
                    render_role_and_text(w, "system", system);
                    w.write(RECORD);
                    w.write(b"user");
                    w.write(UNIT);
                    prompt.render(w);
                    w.write(RECORD);
                }
                _ => prompt.render(w),
            },
            (None, None) => return false,
        }
        true
    }
}

fn render_role_and_text(w: &mut BlockWriter, role: &str, text: &str) {
    w.write(role.as_bytes());
    w.write(UNIT);
    w.write(text.as_bytes());
}

/// The Responses API's `input`.
pub(super) enum Input<'a> {
    Text(Cow<'a, str>),
    Items(Messages<'a>),
}

impl Default for Input<'_> {
    fn default() -> Self {
        Input::Items(Messages::default())
    }
}

/// A list of messages; anything else is no messages.
#[derive(Default)]
pub(super) struct Messages<'a>(pub Vec<Message<'a>>);

/// One chat message (anything but an object renders as an empty message).
#[derive(Default)]
pub(super) struct Message<'a>(MessageFields<'a>);

#[derive(Deserialize, Default)]
#[serde(default)]
struct MessageFields<'a> {
    #[serde(borrow)]
    role: Text<'a>,
    #[serde(borrow)]
    content: Content<'a>,
    #[serde(borrow)]
    tool_calls: ToolCalls<'a>,
}

impl Message<'_> {
    pub fn render(&self, w: &mut BlockWriter) {
        let Message(m) = self;
        render_message(w, m.role.as_str(), &m.content, &m.tool_calls.0);
    }
}

/// A message: its role, its content, its tool calls, the end of the record.
fn render_message(w: &mut BlockWriter, role: &str, content: &Content, tool_calls: &[ToolCall]) {
    w.write(role.as_bytes());
    w.write(UNIT);
    match content {
        Content::Text(text) => w.write(text.as_bytes()),
        Content::Parts(parts) => {
            for part in parts {
                part.render(w);
                w.write(UNIT);
            }
        }
        Content::None => {}
    }
    for ToolCall(call) in tool_calls {
        let (name, arguments) = match &call.function.0 {
            Some(f) => (&f.name, &f.arguments),
            None => (&call.name, &call.arguments),
        };
        for field in [name.as_str(), arguments.as_str()] {
            w.write(UNIT);
            w.write(field.as_bytes());
        }
    }
    w.write(RECORD);
}

/// A string, or nothing for a value of any other type.
#[derive(Default)]
pub(super) struct Text<'a>(Option<Cow<'a, str>>);

impl Text<'_> {
    fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }
}

/// A message's content: a string, a list of parts, or nothing.
#[derive(Default)]
pub(super) enum Content<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<Part<'a>>),
    #[default]
    None,
}

/// A content part: a string, or an object whose text or media reference is rendered.
#[derive(Default)]
pub(super) enum Part<'a> {
    Text(Cow<'a, str>),
    Fields(Box<PartFields<'a>>),
    #[default]
    None,
}

impl Part<'_> {
    fn render(&self, w: &mut BlockWriter) {
        match self {
            Part::Text(text) => w.write(text.as_bytes()),
            Part::Fields(fields) => match &fields.text.0 {
                Some(text) => w.write(text.as_bytes()),
                // Media: its type and reference, so two different images never share blocks.
                None => {
                    w.write(fields.kind.as_str().as_bytes());
                    if let Some(image) = &fields.image_url.0 {
                        w.write(image.url.as_str().as_bytes());
                    }
                }
            },
            Part::None => {}
        }
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct PartFields<'a> {
    #[serde(borrow)]
    text: Text<'a>,
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    #[serde(borrow)]
    image_url: Object<ImageUrl<'a>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct ImageUrl<'a> {
    #[serde(borrow)]
    url: Text<'a>,
}

/// A message's tool calls; anything but a list is none.
#[derive(Default)]
struct ToolCalls<'a>(Vec<ToolCall<'a>>);

/// A tool call: OpenAI's `{"function": {"name", "arguments"}}`, or the fields directly.
#[derive(Default)]
struct ToolCall<'a>(ToolCallFields<'a>);

#[derive(Deserialize, Default)]
#[serde(default)]
struct ToolCallFields<'a> {
    #[serde(borrow)]
    function: Object<Function<'a>>,
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    arguments: Arguments<'a>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Function<'a> {
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    arguments: Arguments<'a>,
}

/// Tool call arguments: OpenAI's JSON string, or Ollama's object (rendered as its JSON text).
#[derive(Default)]
struct Arguments<'a>(Text<'a>);

impl Arguments<'_> {
    fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// A completion prompt: a string, a token id, or a list of them.
#[derive(Default)]
pub(super) enum PromptPart<'a> {
    Text(Cow<'a, str>),
    Token(u32),
    List(Vec<PromptPart<'a>>),
    #[default]
    None,
}

impl PromptPart<'_> {
    pub fn render(&self, w: &mut BlockWriter) {
        match self {
            PromptPart::Text(text) => w.write(text.as_bytes()),
            PromptPart::Token(id) => w.write(&id.to_le_bytes()),
            PromptPart::List(items) => {
                for item in items {
                    item.render(w);
                    if !matches!(item, PromptPart::Token(_)) {
                        w.write(RECORD);
                    }
                }
            }
            PromptPart::None => {}
        }
    }
}

/// An object read as `T`; a value of any other type is `None`.
pub(super) struct Object<T>(Option<T>);

impl<T> Default for Object<T> {
    fn default() -> Self {
        Object(None)
    }
}

/// A type read from any JSON value without failing: each kind of value it does not take becomes
/// its default (and is skipped unparsed).
trait Lenient<'de>: Default {
    fn text(_text: Cow<'de, str>) -> Self {
        Self::default()
    }

    fn number(_n: u64) -> Self {
        Self::default()
    }

    fn seq<S: SeqAccess<'de>>(mut seq: S) -> Result<Self, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Self::default())
    }

    fn map<M: MapAccess<'de>>(mut map: M) -> Result<Self, M::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Self::default())
    }
}

struct LenientVisitor<T>(PhantomData<T>);

impl<'de, T: Lenient<'de>> Visitor<'de> for LenientVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<T, E> {
        Ok(T::text(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::text(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<T, E> {
        Ok(T::text(Cow::Owned(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        Ok(T::number(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        Ok(T::default())
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, seq: S) -> Result<T, S::Error> {
        T::seq(seq)
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<T, M::Error> {
        T::map(map)
    }
}

/// Implements `Deserialize` through [`Lenient`].
macro_rules! lenient {
    ($($ty:ty),* $(,)?) => {$(
        impl<'de: 'a, 'a> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(LenientVisitor::<Self>(PhantomData))
            }
        }
    )*};
}

lenient!(
    Text<'a>,
    Input<'a>,
    Messages<'a>,
    Message<'a>,
    Content<'a>,
    Part<'a>,
    ToolCalls<'a>,
    ToolCall<'a>,
    Arguments<'a>,
    PromptPart<'a>,
    Object<ImageUrl<'a>>,
    Object<Function<'a>>,
);

fn elements<'de, T: Deserialize<'de>, S: SeqAccess<'de>>(mut seq: S) -> Result<Vec<T>, S::Error> {
    let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
    while let Some(item) = seq.next_element()? {
        out.push(item);
    }
    Ok(out)
}

fn fields<'de, T: Deserialize<'de>, M: MapAccess<'de>>(map: M) -> Result<T, M::Error> {
    T::deserialize(MapAccessDeserializer::new(map))
}

impl<'de: 'a, 'a> Lenient<'de> for Text<'a> {
    fn text(text: Cow<'de, str>) -> Self {
        Text(Some(text))
    }
}

impl<'de: 'a, 'a> Lenient<'de> for Input<'a> {
    fn text(text: Cow<'de, str>) -> Self {
        Input::Text(text)
    }

    fn seq<S: SeqAccess<'de>>(seq: S) -> Result<Self, S::Error> {
        elements(seq).map(|items| Input::Items(Messages(items)))
    }
}

impl<'de: 'a, 'a> Lenient<'de> for Messages<'a> {
    fn seq<S: SeqAccess<'de>>(seq: S) -> Result<Self, S::Error> {
        elements(seq).map(Messages)
    }
}

impl<'de: 'a, 'a> Lenient<'de> for Message<'a> {
    fn map<M: MapAccess<'de>>(map: M) -> Result<Self, M::Error> {
        fields(map).map(Message)
    }
}

impl<'de: 'a, 'a> Lenient<'de> for Content<'a> {
    fn text(text: Cow<'de, str>) -> Self {
        Content::Text(text)
    }

    fn seq<S: SeqAccess<'de>>(seq: S) -> Result<Self, S::Error> {
        elements(seq).map(Content::Parts)
    }
}

impl<'de: 'a, 'a> Lenient<'de> for Part<'a> {
    fn text(text: Cow<'de, str>) -> Self {
        Part::Text(text)
    }

    fn map<M: MapAccess<'de>>(map: M) -> Result<Self, M::Error> {
        fields(map).map(|f| Part::Fields(Box::new(f)))
    }
}

impl<'de: 'a, 'a> Lenient<'de> for ToolCalls<'a> {
    fn seq<S: SeqAccess<'de>>(seq: S) -> Result<Self, S::Error> {
        elements(seq).map(ToolCalls)
    }
}

impl<'de: 'a, 'a> Lenient<'de> for ToolCall<'a> {
    fn map<M: MapAccess<'de>>(map: M) -> Result<Self, M::Error> {
        fields(map).map(ToolCall)
    }
}

impl<'de: 'a, 'a> Lenient<'de> for Arguments<'a> {
    fn text(text: Cow<'de, str>) -> Self {
        Arguments(Text(Some(text)))
    }

    /// Ollama's arguments object, as its JSON text (stable for one client's requests).
    fn map<M: MapAccess<'de>>(map: M) -> Result<Self, M::Error> {
        let value: Value = fields(map)?;
        Ok(Arguments(Text(Some(Cow::Owned(value.to_string())))))
    }
}

impl<'de: 'a, 'a> Lenient<'de> for PromptPart<'a> {
    fn text(text: Cow<'de, str>) -> Self {
        PromptPart::Text(text)
    }

    fn number(n: u64) -> Self {
        PromptPart::Token(n as u32)
    }

    fn seq<S: SeqAccess<'de>>(seq: S) -> Result<Self, S::Error> {
        elements(seq).map(PromptPart::List)
    }
}

impl<'de: 'a, 'a> Lenient<'de> for Object<ImageUrl<'a>> {
    fn map<M: MapAccess<'de>>(map: M) -> Result<Self, M::Error> {
        fields(map).map(|f| Object(Some(f)))
    }
}

impl<'de: 'a, 'a> Lenient<'de> for Object<Function<'a>> {
    fn map<M: MapAccess<'de>>(map: M) -> Result<Self, M::Error> {
        fields(map).map(|f| Object(Some(f)))
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
