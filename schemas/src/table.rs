//! Rows ⇄ Arrow record batches.
//!
//! A table is a plain Rust struct declared with the crate's `table!` macro. The macro derives
//! its Arrow schema (one field per struct field, nullable exactly when the Rust type is an
//! `Option`) and the two conversions of the [`Table`] trait. Each field's Arrow encoding is
//! chosen by its Rust type through the [`Column`] trait, so a new table never hand-writes
//! builders.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int32Builder, Int64Builder,
    ListBuilder, StringBuilder, TimestampMillisecondBuilder,
};
use arrow::datatypes::{DataType, Field, TimeUnit};
use arrow::record_batch::RecordBatch;
use chrono::{DateTime, NaiveDate, Utc};

use crate::{Error, Result};

/// A table: a row type with a fixed Arrow schema.
///
/// Contract: `from_batch(to_batch(rows)) == rows` for every slice of valid rows, and
/// `to_batch` always produces a batch whose schema equals `schema()`.
pub trait Table: Sized {
    /// The table's name inside its lake zone (e.g. `sales` for `raw.sales`).
    const NAME: &'static str;
    /// The Arrow schema, shared by every batch of this table.
    fn schema() -> arrow::datatypes::SchemaRef;
    /// Encodes rows as one record batch.
    fn to_batch(rows: &[Self]) -> Result<RecordBatch>;
    /// Decodes a record batch (columns looked up by name, extra columns ignored).
    fn from_batch(batch: &RecordBatch) -> Result<Vec<Self>>;
}

/// How one Rust type is stored in an Arrow column.
pub trait Column: Sized {
    /// The arrow-rs builder used to encode this type.
    type Builder: ArrayBuilder;
    /// Whether the column may hold nulls (true only for `Option<T>`).
    const NULLABLE: bool = false;
    /// Arrow data type of the column.
    fn data_type() -> DataType;
    /// A builder with room for `capacity` values.
    fn builder(capacity: usize) -> Self::Builder;
    /// Appends one value.
    fn append(builder: &mut Self::Builder, value: &Self);
    /// Appends a null (used by `Option<Self>`).
    fn append_null(builder: &mut Self::Builder);
    /// Decodes a whole column; `None` where the array holds a null.
    fn read_column(
        array: &dyn Array,
        table: &'static str,
        field: &'static str,
    ) -> Result<Vec<Option<Self>>>;
}

/// Downcasts `array` or reports the type mismatch naming the column.
pub(crate) fn downcast<'a, T: 'static>(
    array: &'a dyn Array,
    table: &'static str,
    field: &'static str,
    expected: &DataType,
) -> Result<&'a T> {
    array
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| Error::ColumnType {
            table,
            field,
            found: array.data_type().to_string(),
            expected: expected.to_string(),
        })
}

/// Looks a column up by name; used by the `table!` macro.
#[doc(hidden)]
pub fn column<'a>(
    batch: &'a RecordBatch,
    table: &'static str,
    field: &'static str,
) -> Result<&'a dyn Array> {
    batch
        .column_by_name(field)
        .map(|a| a.as_ref())
        .ok_or(Error::MissingColumn { table, field })
}

macro_rules! primitive_column {
    ($ty:ty, $builder:ty, $array:ty, $dt:expr) => {
        impl Column for $ty {
            type Builder = $builder;
            fn data_type() -> DataType {
                $dt
            }
            fn builder(capacity: usize) -> Self::Builder {
                <$builder>::with_capacity(capacity)
            }
            fn append(builder: &mut Self::Builder, value: &Self) {
                builder.append_value(*value)
            }
            fn append_null(builder: &mut Self::Builder) {
                builder.append_null()
            }
            fn read_column(
                array: &dyn Array,
                table: &'static str,
                field: &'static str,
            ) -> Result<Vec<Option<Self>>> {
                let a = downcast::<$array>(array, table, field, &$dt)?;
                Ok(a.iter().collect())
            }
        }
    };
}

primitive_column!(i64, Int64Builder, arrow::array::Int64Array, DataType::Int64);
primitive_column!(i32, Int32Builder, arrow::array::Int32Array, DataType::Int32);
primitive_column!(
    f64,
    Float64Builder,
    arrow::array::Float64Array,
    DataType::Float64
);
primitive_column!(
    bool,
    BooleanBuilder,
    arrow::array::BooleanArray,
    DataType::Boolean
);

impl Column for String {
    type Builder = StringBuilder;
    fn data_type() -> DataType {
        DataType::Utf8
    }
    fn builder(capacity: usize) -> Self::Builder {
        StringBuilder::with_capacity(capacity, capacity * 16)
    }
    fn append(builder: &mut Self::Builder, value: &Self) {
        builder.append_value(value)
    }
    fn append_null(builder: &mut Self::Builder) {
        builder.append_null()
    }
    fn read_column(
        array: &dyn Array,
        table: &'static str,
        field: &'static str,
    ) -> Result<Vec<Option<Self>>> {
        let a = downcast::<arrow::array::StringArray>(array, table, field, &DataType::Utf8)?;
        Ok(a.iter().map(|v| v.map(str::to_owned)).collect())
    }
}

/// Days between 0001-01-01 (chrono's day 1) and the Unix epoch.
const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

impl Column for NaiveDate {
    type Builder = Date32Builder;
    fn data_type() -> DataType {
        DataType::Date32
    }
    fn builder(capacity: usize) -> Self::Builder {
        Date32Builder::with_capacity(capacity)
    }
    fn append(builder: &mut Self::Builder, value: &Self) {
        use chrono::Datelike;
        builder.append_value(value.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE)
    }
    fn append_null(builder: &mut Self::Builder) {
        builder.append_null()
    }
    fn read_column(
        array: &dyn Array,
        table: &'static str,
        field: &'static str,
    ) -> Result<Vec<Option<Self>>> {
        let a = downcast::<arrow::array::Date32Array>(array, table, field, &DataType::Date32)?;
        a.iter()
            .map(|v| match v {
                None => Ok(None),
                Some(days) => NaiveDate::from_num_days_from_ce_opt(days + UNIX_EPOCH_DAYS_FROM_CE)
                    .map(Some)
                    .ok_or_else(|| Error::InvalidValue {
                        table,
                        field,
                        value: days.to_string(),
                        reason: "date out of range".into(),
                    }),
            })
            .collect()
    }
}

/// The Arrow type of every timestamp in ROI: milliseconds, UTC.
pub fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))
}

impl Column for DateTime<Utc> {
    type Builder = TimestampMillisecondBuilder;
    fn data_type() -> DataType {
        timestamp_type()
    }
    fn builder(capacity: usize) -> Self::Builder {
        TimestampMillisecondBuilder::with_capacity(capacity).with_timezone("UTC")
    }
    fn append(builder: &mut Self::Builder, value: &Self) {
        builder.append_value(value.timestamp_millis())
    }
    fn append_null(builder: &mut Self::Builder) {
        builder.append_null()
    }
    fn read_column(
        array: &dyn Array,
        table: &'static str,
        field: &'static str,
    ) -> Result<Vec<Option<Self>>> {
        let a = downcast::<arrow::array::TimestampMillisecondArray>(
            array,
            table,
            field,
            &timestamp_type(),
        )?;
        a.iter()
            .map(|v| match v {
                None => Ok(None),
                Some(ms) => DateTime::from_timestamp_millis(ms)
                    .map(Some)
                    .ok_or_else(|| Error::InvalidValue {
                        table,
                        field,
                        value: ms.to_string(),
                        reason: "timestamp out of range".into(),
                    }),
            })
            .collect()
    }
}

impl<T: Column> Column for Option<T> {
    type Builder = T::Builder;
    const NULLABLE: bool = true;
    fn data_type() -> DataType {
        T::data_type()
    }
    fn builder(capacity: usize) -> Self::Builder {
        T::builder(capacity)
    }
    fn append(builder: &mut Self::Builder, value: &Self) {
        match value {
            Some(v) => T::append(builder, v),
            None => T::append_null(builder),
        }
    }
    fn append_null(builder: &mut Self::Builder) {
        T::append_null(builder)
    }
    fn read_column(
        array: &dyn Array,
        table: &'static str,
        field: &'static str,
    ) -> Result<Vec<Option<Self>>> {
        Ok(T::read_column(array, table, field)?
            .into_iter()
            .map(Some)
            .collect())
    }
}

/// A list of strings (zip codes, reasons) stored as `List<Utf8>`.
impl Column for Vec<String> {
    type Builder = ListBuilder<StringBuilder>;
    fn data_type() -> DataType {
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
    }
    fn builder(capacity: usize) -> Self::Builder {
        ListBuilder::with_capacity(StringBuilder::new(), capacity)
    }
    fn append(builder: &mut Self::Builder, value: &Self) {
        for v in value {
            builder.values().append_value(v);
        }
        builder.append(true);
    }
    fn append_null(builder: &mut Self::Builder) {
        builder.append(false)
    }
    fn read_column(
        array: &dyn Array,
        table: &'static str,
        field: &'static str,
    ) -> Result<Vec<Option<Self>>> {
        let dt = Self::data_type();
        let list = downcast::<arrow::array::ListArray>(array, table, field, &dt)?;
        let mut out = Vec::with_capacity(list.len());
        for i in 0..list.len() {
            if list.is_null(i) {
                out.push(None);
                continue;
            }
            let values = list.value(i);
            let strings =
                downcast::<arrow::array::StringArray>(values.as_ref(), table, field, &dt)?;
            out.push(Some(
                strings
                    .iter()
                    .map(|s| s.unwrap_or_default().to_owned())
                    .collect(),
            ));
        }
        Ok(out)
    }
}

/// A list of integers (ids) stored as `List<Int64>`.
impl Column for Vec<i64> {
    type Builder = ListBuilder<arrow::array::Int64Builder>;
    fn data_type() -> DataType {
        DataType::List(Arc::new(Field::new("item", DataType::Int64, true)))
    }
    fn builder(capacity: usize) -> Self::Builder {
        ListBuilder::with_capacity(arrow::array::Int64Builder::new(), capacity)
    }
    fn append(builder: &mut Self::Builder, value: &Self) {
        builder.values().append_slice(value);
        builder.append(true);
    }
    fn append_null(builder: &mut Self::Builder) {
        builder.append(false)
    }
    fn read_column(
        array: &dyn Array,
        table: &'static str,
        field: &'static str,
    ) -> Result<Vec<Option<Self>>> {
        let dt = Self::data_type();
        let list = downcast::<arrow::array::ListArray>(array, table, field, &dt)?;
        let mut out = Vec::with_capacity(list.len());
        for i in 0..list.len() {
            if list.is_null(i) {
                out.push(None);
                continue;
            }
            let values = list.value(i);
            let ints = downcast::<arrow::array::Int64Array>(values.as_ref(), table, field, &dt)?;
            out.push(Some(ints.iter().map(Option::unwrap_or_default).collect()));
        }
        Ok(out)
    }
}

/// An enum with a stable string form (used in JSON, Arrow and SQL alike).
pub trait StrEnum: Sized + Copy + 'static {
    /// Every variant, in declaration order.
    const ALL: &'static [Self];
    /// What the enum is called in error messages.
    const WHAT: &'static str;
    /// The stable string form.
    fn as_str(&self) -> &'static str;
    /// Parses the stable string form.
    fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.as_str() == s)
    }
    /// All string forms, comma separated, for error messages and help texts.
    fn names() -> String {
        Self::ALL
            .iter()
            .map(|v| v.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Stores a [`StrEnum`] as its string form.
pub(crate) fn read_enum_column<T: StrEnum>(
    array: &dyn Array,
    table: &'static str,
    field: &'static str,
) -> Result<Vec<Option<T>>> {
    let a = downcast::<arrow::array::StringArray>(array, table, field, &DataType::Utf8)?;
    a.iter()
        .map(|v| match v {
            None => Ok(None),
            Some(s) => T::parse(s).map(Some).ok_or_else(|| Error::InvalidValue {
                table,
                field,
                value: s.to_owned(),
                reason: format!("unknown {}; expected one of: {}", T::WHAT, T::names()),
            }),
        })
        .collect()
}

/// Declares a [`StrEnum`] with serde, `Display`, `FromStr` and [`Column`] support.
macro_rules! str_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name { $( $(#[$vmeta])* $variant ),* }

        impl $crate::table::StrEnum for $name {
            const ALL: &'static [Self] = &[$( $name::$variant ),*];
            const WHAT: &'static str = $what;
            fn as_str(&self) -> &'static str {
                match self { $( $name::$variant => $text ),* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::table::StrEnum::as_str(self))
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::Error;
            fn from_str(s: &str) -> $crate::Result<Self> {
                <$name as $crate::table::StrEnum>::parse(s).ok_or_else(|| $crate::Error::InvalidValue {
                    table: $what,
                    field: "value",
                    value: s.to_owned(),
                    reason: format!("expected one of: {}", <$name as $crate::table::StrEnum>::names()),
                })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::table::StrEnum::as_str(self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str> as serde::Deserialize>::deserialize(d)?;
                <$name as $crate::table::StrEnum>::parse(&s).ok_or_else(|| {
                    serde::de::Error::custom(format!(
                        "unknown {} {:?}; expected one of: {}",
                        $what, s, <$name as $crate::table::StrEnum>::names()
                    ))
                })
            }
        }

        impl $crate::table::Column for $name {
            type Builder = arrow::array::StringBuilder;
            fn data_type() -> arrow::datatypes::DataType { arrow::datatypes::DataType::Utf8 }
            fn builder(capacity: usize) -> Self::Builder {
                arrow::array::StringBuilder::with_capacity(capacity, capacity * 12)
            }
            fn append(builder: &mut Self::Builder, value: &Self) {
                builder.append_value($crate::table::StrEnum::as_str(value))
            }
            fn append_null(builder: &mut Self::Builder) { builder.append_null() }
            fn read_column(
                array: &dyn arrow::array::Array,
                table: &'static str,
                field: &'static str,
            ) -> $crate::Result<Vec<Option<Self>>> {
                $crate::table::read_enum_column::<$name>(array, table, field)
            }
        }
    };
}
pub(crate) use str_enum;

/// Declares a row struct and derives its [`Table`] implementation.
macro_rules! table {
    (
        $(#[$meta:meta])*
        pub struct $name:ident in $table:literal {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
        pub struct $name { $( $(#[$fmeta])* pub $field: $ty ),* }

        impl $crate::table::Table for $name {
            const NAME: &'static str = $table;

            fn schema() -> arrow::datatypes::SchemaRef {
                static SCHEMA: std::sync::OnceLock<arrow::datatypes::SchemaRef> =
                    std::sync::OnceLock::new();
                SCHEMA
                    .get_or_init(|| {
                        std::sync::Arc::new(arrow::datatypes::Schema::new(vec![$(
                            arrow::datatypes::Field::new(
                                stringify!($field),
                                <$ty as $crate::table::Column>::data_type(),
                                <$ty as $crate::table::Column>::NULLABLE,
                            )
                        ),*]))
                    })
                    .clone()
            }

            fn to_batch(rows: &[Self]) -> $crate::Result<arrow::record_batch::RecordBatch> {
                $( let mut $field = <$ty as $crate::table::Column>::builder(rows.len()); )*
                for row in rows {
                    $( <$ty as $crate::table::Column>::append(&mut $field, &row.$field); )*
                }
                Ok(arrow::record_batch::RecordBatch::try_new(
                    Self::schema(),
                    vec![$( arrow::array::ArrayBuilder::finish(&mut $field) ),*],
                )?)
            }

            fn from_batch(batch: &arrow::record_batch::RecordBatch) -> $crate::Result<Vec<Self>> {
                $(
                    let mut $field = <$ty as $crate::table::Column>::read_column(
                        $crate::table::column(batch, $table, stringify!($field))?,
                        $table,
                        stringify!($field),
                    )?
                    .into_iter();
                )*
                let mut out = Vec::with_capacity(batch.num_rows());
                for row in 0..batch.num_rows() {
                    out.push($name {$(
                        $field: $field.next().flatten().ok_or($crate::Error::NullValue {
                            table: $table,
                            field: stringify!($field),
                            row,
                        })?,
                    )*});
                }
                Ok(out)
            }
        }
    };
}
pub(crate) use table;

/// A list of enum values (an agent's skills) stored as `List<Utf8>` of their string forms.
impl<T: StrEnum> Column for Vec<T> {
    type Builder = ListBuilder<StringBuilder>;
    fn data_type() -> DataType {
        <Vec<String> as Column>::data_type()
    }
    fn builder(capacity: usize) -> Self::Builder {
        ListBuilder::with_capacity(StringBuilder::new(), capacity)
    }
    fn append(builder: &mut Self::Builder, value: &Self) {
        for v in value {
            builder.values().append_value(v.as_str());
        }
        builder.append(true);
    }
    fn append_null(builder: &mut Self::Builder) {
        builder.append(false)
    }
    fn read_column(
        array: &dyn Array,
        table: &'static str,
        field: &'static str,
    ) -> Result<Vec<Option<Self>>> {
        <Vec<String> as Column>::read_column(array, table, field)?
            .into_iter()
            .map(|list| {
                list.map(|items| {
                    items
                        .iter()
                        .map(|s| {
                            T::parse(s).ok_or_else(|| Error::InvalidValue {
                                table,
                                field,
                                value: s.clone(),
                                reason: format!(
                                    "unknown {}; expected one of: {}",
                                    T::WHAT,
                                    T::names()
                                ),
                            })
                        })
                        .collect::<Result<Vec<T>>>()
                })
                .transpose()
            })
            .collect()
    }
}
