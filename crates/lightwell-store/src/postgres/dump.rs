//! Export and import of the whole PostgreSQL store (see `crate::dump`).

use postgres::IsolationLevel;
use postgres::types::ToSql;

use super::{PostgresStore, SCHEMA_VERSION};
use crate::StoreError;
use crate::dump::{ColumnType, Dump, TABLES, TableDump, Value};

fn read_value(row: &postgres::Row, i: usize, ty: ColumnType) -> Result<Value, postgres::Error> {
    Ok(match ty {
        ColumnType::Int => row.try_get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::Int),
        ColumnType::Text => row.try_get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text),
        ColumnType::Bytes => row.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Value::Null, Value::Bytes),
        ColumnType::Bool => row.try_get::<_, Option<bool>>(i)?.map_or(Value::Null, Value::Bool),
    })
}

/// A parameter for `v` in a column of type `ty` (a NULL still needs the column's type).
fn param(v: &Value, ty: ColumnType) -> Box<dyn ToSql + Sync> {
    match (v, ty) {
        (Value::Int(i), _) => Box::new(*i),
        (Value::Text(s), _) => Box::new(s.clone()),
        (Value::Bytes(b), _) => Box::new(b.clone()),
        (Value::Bool(b), _) => Box::new(*b),
        (Value::Null, ColumnType::Int) => Box::new(None::<i64>),
        (Value::Null, ColumnType::Text) => Box::new(None::<String>),
        (Value::Null, ColumnType::Bytes) => Box::new(None::<Vec<u8>>),
        (Value::Null, ColumnType::Bool) => Box::new(None::<bool>),
    }
}

impl PostgresStore {
    pub(super) fn export_all(&self) -> Result<Dump, StoreError> {
        let mut conn = self.conn()?;
        let mut tx =
            conn.build_transaction().isolation_level(IsolationLevel::RepeatableRead).read_only(true).start()?;
        let mut tables = Vec::with_capacity(TABLES.len());
        for spec in TABLES {
            let sql = format!("SELECT {} FROM {} ORDER BY {}", spec.column_list(), spec.name, spec.order_by);
            let rows = tx
                .query(&sql, &[])?
                .iter()
                .map(|row| spec.columns.iter().enumerate().map(|(i, (_, ty))| read_value(row, i, *ty)).collect())
                .collect::<Result<Vec<Vec<Value>>, _>>()?;
            tables.push(TableDump { table: spec.name.to_string(), rows });
        }
        tx.commit()?;
        Ok(Dump { schema_version: SCHEMA_VERSION, tables })
    }

    pub(super) fn import_all(&self, dump: &Dump) -> Result<(), StoreError> {
        dump.check_shape(SCHEMA_VERSION)?;
        let mut conn = self.conn()?;
        let mut tx = conn.build_transaction().isolation_level(IsolationLevel::Serializable).start()?;
        for spec in TABLES {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", spec.name);
            if tx.query_one(&sql, &[])?.get::<_, bool>(0) {
                return Err(StoreError::Conflict(format!("the target already holds data (table {})", spec.name)));
            }
        }
        for (spec, table) in TABLES.iter().zip(&dump.tables) {
            let placeholders: Vec<String> = (1..=spec.columns.len()).map(|i| format!("${i}")).collect();
            let sql =
                format!("INSERT INTO {} ({}) VALUES ({})", spec.name, spec.column_list(), placeholders.join(", "));
            let stmt = tx.prepare(&sql)?;
            for row in &table.rows {
                let params: Vec<Box<dyn ToSql + Sync>> =
                    row.iter().zip(spec.columns).map(|(v, (_, ty))| param(v, *ty)).collect();
                let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
                tx.execute(&stmt, &refs)?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
