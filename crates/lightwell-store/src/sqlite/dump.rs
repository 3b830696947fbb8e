//! Export and import of the whole SQLite store (see `crate::dump`).

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, TransactionBehavior};

use super::{SCHEMA_VERSION, SqliteStore};
use crate::StoreError;
use crate::dump::{ColumnType, Dump, TABLES, TableDump, Value};

fn read_value(row: &rusqlite::Row<'_>, i: usize, ty: ColumnType) -> rusqlite::Result<Value> {
    Ok(match ty {
        ColumnType::Int => row.get::<_, Option<i64>>(i)?.map_or(Value::Null, Value::Int),
        ColumnType::Text => row.get::<_, Option<String>>(i)?.map_or(Value::Null, Value::Text),
        ColumnType::Bytes => row.get::<_, Option<Vec<u8>>>(i)?.map_or(Value::Null, Value::Bytes),
        ColumnType::Bool => row.get::<_, Option<bool>>(i)?.map_or(Value::Null, Value::Bool),
    })
}

fn sql_value(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Int(i) => SqlValue::Integer(*i),
        Value::Text(s) => SqlValue::Text(s.clone()),
        Value::Bytes(b) => SqlValue::Blob(b.clone()),
        Value::Bool(b) => SqlValue::Integer(i64::from(*b)),
    }
}

fn export_from(conn: &mut Connection) -> Result<Dump, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
    let mut tables = Vec::with_capacity(TABLES.len());
    for spec in TABLES {
        let sql = format!("SELECT {} FROM {} ORDER BY {}", spec.column_list(), spec.name, spec.order_by);
        let mut stmt = tx.prepare(&sql)?;
        let rows = stmt
            .query_map([], |row| spec.columns.iter().enumerate().map(|(i, (_, ty))| read_value(row, i, *ty)).collect())?
            .collect::<Result<Vec<Vec<Value>>, _>>()?;
        tables.push(TableDump { table: spec.name.to_string(), rows });
    }
    Ok(Dump { schema_version: SCHEMA_VERSION, tables })
}

impl SqliteStore {
    pub(super) fn export_all(&self) -> Result<Dump, StoreError> {
        export_from(&mut self.writer.exclusive().conn)
    }

    pub(super) fn import_all(&self, dump: &Dump) -> Result<(), StoreError> {
        dump.check_shape(SCHEMA_VERSION)?;
        let mut w = self.writer.exclusive();
        let conn = &mut w.conn;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for spec in TABLES {
            let sql = format!("SELECT EXISTS (SELECT 1 FROM {})", spec.name);
            if tx.query_row(&sql, [], |r| r.get::<_, bool>(0))? {
                return Err(StoreError::Conflict(format!("the target already holds data (table {})", spec.name)));
            }
        }
        for (spec, table) in TABLES.iter().zip(&dump.tables) {
            let placeholders: Vec<String> = (1..=spec.columns.len()).map(|i| format!("?{i}")).collect();
            let sql =
                format!("INSERT INTO {} ({}) VALUES ({})", spec.name, spec.column_list(), placeholders.join(", "));
            let mut stmt = tx.prepare(&sql)?;
            for row in &table.rows {
                stmt.execute(rusqlite::params_from_iter(row.iter().map(sql_value)))?;
            }
        }
        tx.commit()?;
        Ok(())
    }
}
