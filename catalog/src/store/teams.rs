//! Storing teams and their memberships.

use async_trait::async_trait;
use tessera_contracts::api::{Team, TeamCreate, TeamUpdate};

use super::{PageRequest, Result};

/// Teams and who belongs to them.
#[async_trait]
pub trait TeamStore: Send + Sync + 'static {
    async fn create_team(&self, actor: &str, new: &TeamCreate) -> Result<Team>;
    async fn get_team(&self, name: &str) -> Result<Option<Team>>;
    async fn list_teams(&self, page: &PageRequest) -> Result<Vec<Team>>;
    async fn update_team(&self, actor: &str, name: &str, if_match: Option<i64>, patch: &TeamUpdate) -> Result<Team>;
    async fn delete_team(&self, actor: &str, name: &str, if_match: Option<i64>) -> Result<()>;
    async fn add_team_member(&self, actor: &str, team: &str, principal: &str) -> Result<Team>;
    async fn remove_team_member(&self, actor: &str, team: &str, principal: &str) -> Result<Team>;
    /// The teams a principal belongs to, by name.
    async fn principal_teams(&self, name: &str) -> Result<Vec<String>>;
    /// Every team membership as `(team, principal)`.
    async fn memberships(&self) -> Result<Vec<(String, String)>>;
}
