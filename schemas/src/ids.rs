//! Typed identifiers.
//!
//! Every id is a 64-bit signed integer (it fits PostgreSQL's `BIGINT` and Arrow's `Int64`)
//! wrapped in its own type. In JSON an id is a plain number.

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
                 serde::Serialize, serde::Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl $crate::table::Column for $name {
            type Builder = arrow::array::Int64Builder;
            fn data_type() -> arrow::datatypes::DataType { arrow::datatypes::DataType::Int64 }
            fn builder(capacity: usize) -> Self::Builder {
                arrow::array::Int64Builder::with_capacity(capacity)
            }
            fn append(builder: &mut Self::Builder, value: &Self) { builder.append_value(value.0) }
            fn append_null(builder: &mut Self::Builder) { builder.append_null() }
            fn read_column(
                array: &dyn arrow::array::Array,
                table: &'static str,
                field: &'static str,
            ) -> $crate::Result<Vec<Option<Self>>> {
                Ok(<i64 as $crate::table::Column>::read_column(array, table, field)?
                    .into_iter()
                    .map(|v| v.map($name))
                    .collect())
            }
        }
    )*};
}

id_type!(
    /// A tenant: a title company or brokerage.
    OrgId,
    /// An agent working for an organization.
    AgentId,
    /// A named set of zip codes an agent covers.
    TerritoryId,
    /// A homeowner (closed client) of an organization.
    ContactId,
    /// A physical property (one row of the property master).
    PropertyId,
    /// A recorded sale.
    SaleId,
    /// A mortgage loan.
    LoanId,
    /// A behaviour event.
    EventId,
    /// A metropolitan area of the world.
    MetroId,
    /// A property record as delivered by one source.
    RecordId,
    /// A document (closing disclosure, deed, …) stored for a contact.
    DocumentId,
    /// A for-sale listing.
    ListingId,
    /// An e-mail campaign.
    CampaignId,
    /// A browsing session.
    SessionId,
);
