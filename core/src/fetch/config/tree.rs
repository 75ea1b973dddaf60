//! The spanned tree the checker reads: every TOML value with its place in the text.

use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

// toml 0.8's `Spanned<T>` fails outright on tables that are only implied (`accounts` in
// `[accounts.work]`, or `a` in `a.b = 1`), so `Item` speaks the same protocol but falls back to
// "no span" for those. The protocol's struct and field names are private to serde_spanned, so
// they are read from `Spanned`'s own `Deserialize` impl instead of being copied here.

/// A TOML value and where it sits in the text (when toml knows).
///
/// Deliberately not `Debug`: the tree holds the password as plain text.
pub(super) struct Item {
    pub(super) span: Option<Range<usize>>,
    pub(super) node: Node,
}

pub(super) enum Node {
    String(String),
    Integer(i64),
    Float,
    Boolean(bool),
    Datetime,
    Array(Vec<Item>),
    /// Entries in the order toml hands them over (not file order; see [`Item::offset`]).
    Table(Vec<(String, Item)>),
}

impl Node {
    /// The TOML type, with an article, for "expected X, found Y".
    pub(super) fn type_name(&self) -> &'static str {
        match self {
            Node::String(_) => "a string",
            Node::Integer(_) => "an integer",
            Node::Float => "a float",
            Node::Boolean(_) => "a boolean",
            Node::Datetime => "a date-time",
            Node::Array(_) => "an array",
            Node::Table(_) => "a table",
        }
    }
}

impl Item {
    /// The first byte offset of this item, looking into children when it has no span itself.
    pub(super) fn offset(&self) -> Option<usize> {
        if let Some(span) = &self.span {
            return Some(span.start);
        }
        match &self.node {
            Node::Table(entries) => entries.iter().filter_map(|(_, item)| item.offset()).min(),
            Node::Array(items) => items.iter().filter_map(Item::offset).min(),
            _ => None,
        }
    }
}

/// The datetime marker key toml uses; a datetime is never a valid popwire value.
pub(super) const TOML_DATETIME_KEY: &str = "$__toml_private_datetime";

/// `Spanned`'s private protocol: the struct name and its three field names (start, end, value).
type SpannedProtocol = (&'static str, &'static [&'static str]);

/// Learns the protocol by letting `toml::Spanned` ask a probe deserializer for it.
pub(super) fn spanned_protocol() -> Option<SpannedProtocol> {
    static PROTOCOL: OnceLock<Option<SpannedProtocol>> = OnceLock::new();
    *PROTOCOL.get_or_init(|| {
        let mut seen = None;
        let _ = toml::Spanned::<IgnoredAny>::deserialize(Probe(&mut seen));
        seen.filter(|(_, fields)| fields.len() == 3)
    })
}

struct Probe<'a>(&'a mut Option<SpannedProtocol>);

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("probe"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some((name, fields));
        Err(de::Error::custom("probe"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

impl<'de> Deserialize<'de> for Item {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match spanned_protocol() {
            Some((name, fields)) => deserializer.deserialize_struct(name, fields, ItemVisitor),
            None => Node::deserialize(deserializer).map(|node| Item { span: None, node }),
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// Reads an [`Item`]: either toml's spanned map, or (for implied tables) the value itself.
struct ItemVisitor;

impl<'de> Visitor<'de> for ItemVisitor {
    type Value = Item;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Item, E> {
        NodeVisitor.visit_bool(v).map(unspanned)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Item, E> {
        NodeVisitor.visit_i64(v).map(unspanned)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Item, E> {
        NodeVisitor.visit_u64(v).map(unspanned)
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Item, E> {
        NodeVisitor.visit_f64(v).map(unspanned)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Item, E> {
        NodeVisitor.visit_str(v).map(unspanned)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Item, A::Error> {
        NodeVisitor.visit_seq(seq).map(unspanned)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Ok(unspanned(Node::Table(Vec::new())));
        };
        let start_field = spanned_protocol().and_then(|(_, fields)| fields.first().copied());
        if Some(first.as_str()) != start_field {
            // An implied table, handed over as a plain map.
            return read_table(first, map).map(unspanned);
        }
        let start: usize = map.next_value()?;
        let mut end = None;
        let mut node = None;
        while let Some(key) = map.next_key::<String>()? {
            match spanned_protocol().and_then(|(_, f)| f.iter().position(|&n| n == key)) {
                Some(1) => end = Some(map.next_value::<usize>()?),
                Some(2) => node = Some(map.next_value::<Node>()?),
                _ => return Err(de::Error::custom("unexpected field in a spanned value")),
            }
        }
        let node = node.ok_or_else(|| de::Error::custom("spanned value without a value"))?;
        let end = end.unwrap_or(start);
        Ok(Item {
            span: Some(start..end),
            node,
        })
    }
}

fn unspanned(node: Node) -> Item {
    Item { span: None, node }
}

/// Reads the rest of a table whose first key has already been taken.
fn read_table<'de, A: MapAccess<'de>>(first: String, mut map: A) -> Result<Node, A::Error> {
    if first == TOML_DATETIME_KEY {
        map.next_value::<IgnoredAny>()?;
        return Ok(Node::Datetime);
    }
    let mut entries = vec![(first, map.next_value::<Item>()?)];
    while let Some(key) = map.next_key::<String>()? {
        entries.push((key, map.next_value::<Item>()?));
    }
    Ok(Node::Table(entries))
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a TOML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Boolean(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Integer(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        // TOML integers are i64; saturate rather than fail, range checks happen later.
        Ok(Node::Integer(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    fn visit_f64<E: de::Error>(self, _v: f64) -> Result<Node, E> {
        Ok(Node::Float)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::String(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::String(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Item>()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        match map.next_key::<String>()? {
            Some(first) => read_table(first, map),
            None => Ok(Node::Table(Vec::new())),
        }
    }
}

/// Orders table entries as they appear in the file; entries toml gave no position go last.
pub(super) fn in_file_order(entries: &[(String, Item)]) -> Vec<(&str, &Item)> {
    let mut sorted: Vec<(&str, &Item)> = entries
        .iter()
        .map(|(key, item)| (key.as_str(), item))
        .collect();
    sorted.sort_by_key(|(_, item)| item.offset().unwrap_or(usize::MAX));
    sorted
}
