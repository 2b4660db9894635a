//! One SQL query, planned once against the input's schema and run on each
//! batch: the batch sits in a one-table catalog (`input`) whose scan hands
//! DataFusion the current batch, so the optimized logical plan is reused
//! and only physical planning (cheap) repeats per batch.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::memory::MemorySourceConfig;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::context::SQLOptions;
use datafusion::execution::SessionState;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Expr, LogicalPlan, TableType};
use datafusion::physical_plan::{collect, ExecutionPlan};
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion::prelude::{SessionConfig, SessionContext};

/// The name the query reads its input by.
pub const INPUT: &str = "input";

/// The table behind `input`: whatever batch is in the slot.
#[derive(Debug)]
struct Slot {
    schema: SchemaRef,
    batch: Arc<Mutex<Option<RecordBatch>>>,
}

#[async_trait]
impl TableProvider for Slot {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let batch = self
            .batch
            .lock()
            .map_err(|_| DataFusionError::Internal("batch slot poisoned".into()))?
            .clone();
        let partitions = vec![batch.into_iter().collect::<Vec<_>>()];
        Ok(MemorySourceConfig::try_new_exec(
            &partitions,
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}

/// A planned query.
pub struct Query {
    // The session's state and task context, taken once: cloning the state
    // (every registered function) per batch showed up in the per-batch cost.
    state: SessionState,
    task: Arc<TaskContext>,
    plan: LogicalPlan,
    output: SchemaRef,
    input: SchemaRef,
    slot: Arc<Mutex<Option<RecordBatch>>>,
    runtime: tokio::runtime::Runtime,
}

impl Query {
    /// Parses, checks and optimizes `sql` against an input of `schema`.
    pub fn plan(sql: &str, schema: SchemaRef) -> Result<Query, String> {
        // One partition and one thread: weir runs nodes in parallel itself
        // (`parallelism`), and a plugin has no threads to give.
        let config = SessionConfig::new()
            .with_target_partitions(1)
            .with_batch_size(1 << 20)
            .with_information_schema(false);
        let mut ctx = SessionContext::new_with_config(config);
        datafusion_functions_json::register_all(&mut ctx).map_err(|e| e.to_string())?;
        let slot = Arc::new(Mutex::new(None));
        ctx.register_table(
            INPUT,
            Arc::new(Slot {
                schema: schema.clone(),
                batch: slot.clone(),
            }),
        )
        .map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(|e| format!("starting the query runtime: {e}"))?;
        // Queries only: no CREATE, INSERT, SET or COPY.
        let options = SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false);
        let frame = runtime
            .block_on(ctx.sql_with_options(sql, options))
            .map_err(|e| plain(&e))?;
        let plan = frame.into_unoptimized_plan();
        per_batch(&plan)?;
        let output = Arc::new(plan.schema().as_arrow().clone());
        let state = ctx.state();
        let plan = state.optimize(&plan).map_err(|e| plain(&e))?;
        Ok(Query {
            task: ctx.task_ctx(),
            state,
            plan,
            output,
            input: schema,
            slot,
            runtime,
        })
    }

    /// The schema of every output batch.
    pub fn output(&self) -> SchemaRef {
        self.output.clone()
    }

    /// The input schema the query was planned for.
    pub fn input(&self) -> &SchemaRef {
        &self.input
    }

    /// Runs the query over `batch`.
    pub fn run(&self, batch: RecordBatch) -> Result<Vec<RecordBatch>, String> {
        *self.slot.lock().map_err(|_| "batch slot poisoned")? = Some(batch);
        let result = self.runtime.block_on(async {
            let physical = DefaultPhysicalPlanner::default()
                .create_physical_plan(&self.plan, &self.state)
                .await?;
            collect(physical, self.task.clone()).await
        });
        *self.slot.lock().map_err(|_| "batch slot poisoned")? = None;
        let batches = result.map_err(|e| plain(&e))?;
        // Batches carry the physical plan's schema; the declared one (from
        // the logical plan) is what `describe` told the host.
        batches
            .into_iter()
            .filter(|b| b.num_rows() > 0)
            .map(|b| {
                RecordBatch::try_new(self.output.clone(), b.columns().to_vec())
                    .map_err(|e| format!("the query's result does not fit its schema: {e}"))
            })
            .collect()
    }
}

/// DataFusion's message without its wrapping ("Error during planning: ").
fn plain(e: &DataFusionError) -> String {
    e.find_root().to_string()
}

/// Rejects what would be silently wrong when run one batch at a time:
/// anything that combines rows (aggregates, windows, DISTINCT), orders
/// them (ORDER BY, LIMIT) or joins.
fn per_batch(plan: &LogicalPlan) -> Result<(), String> {
    let mut refused = None;
    let mut reads_input = false;
    plan.apply_with_subqueries(|node| {
        let why = match node {
            LogicalPlan::TableScan(_) => {
                reads_input = true;
                None
            }
            // `IN (SELECT … FROM input)`, a scalar subquery: a second read
            // of `input` would see only the current batch.
            LogicalPlan::Subquery(_) => Some(
                "a subquery over `input` would see only the current batch, not the stream: \
                 compare with literal values, or keep state with a plugin (`dedupe`, `aggregate`)",
            ),
            LogicalPlan::Projection(_)
            | LogicalPlan::Filter(_)
            | LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Unnest(_)
            | LogicalPlan::EmptyRelation(_)
            | LogicalPlan::Values(_) => None,
            LogicalPlan::Aggregate(_) => Some(
                "the query aggregates (GROUP BY, count, sum, ...), but a sql node sees one batch \
                 at a time: aggregate across batches with the `aggregate` plugin (windows, \
                 group_by, count/sum/min/max/mean)",
            ),
            LogicalPlan::Window(_) => Some(
                "the query uses a window function (OVER ...), which would see one batch at a \
                 time: use the `aggregate` plugin for windows over the stream",
            ),
            LogicalPlan::Distinct(_) => Some(
                "SELECT DISTINCT would remove duplicates within one batch only: use the \
                 `dedupe` plugin for duplicates across the stream",
            ),
            LogicalPlan::Sort(_) => Some(
                "ORDER BY would sort each batch on its own, not the stream: order rows where \
                 they are read (a sink writes them in arrival order)",
            ),
            LogicalPlan::Limit(_) => Some(
                "LIMIT/OFFSET would apply to each batch, not the stream: filter rows with WHERE",
            ),
            LogicalPlan::Join(_) => {
                Some("a join needs a second input: a sql node reads only `input` for now")
            }
            _ => Some("this statement is not a per-row query (SELECT ... FROM input WHERE ...)"),
        };
        if let Some(why) = why {
            refused = Some(why);
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .map_err(|e| plain(&e))?;
    match refused {
        Some(why) => Err(why.to_string()),
        None if !reads_input => Err(format!(
            "the query does not read its input: write SELECT ... FROM {INPUT}"
        )),
        None => Ok(()),
    }
}
