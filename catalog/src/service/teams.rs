//! Teams and their members.

use std::collections::BTreeSet;

use tessera_contracts::api::{Page, Team, TeamCreate, TeamUpdate};

use super::validate::{check_len, check_name, finish, page};
use super::{Catalog, Error, Paging, Result};
use crate::authz::Caller;

impl Catalog {
    pub async fn create_team(&self, caller: &Caller, mut body: TeamCreate) -> Result<Team> {
        self.authz.require_admin(caller)?;
        let mut errors = Vec::new();
        if let Err(e) = check_name("name", &body.name) {
            errors.push(e);
        }
        check_len(&mut errors, "title", body.title.as_ref(), 200);
        check_len(&mut errors, "description", body.description.as_ref(), 10_000);
        for (i, m) in body.members.iter().enumerate() {
            if let Err(e) = check_name(&format!("members[{i}]"), m) {
                errors.push(e);
            }
        }
        finish(errors)?;
        body.members = body.members.into_iter().collect::<BTreeSet<_>>().into_iter().collect();
        Ok(self.store.create_team(caller.name(), &body).await?)
    }

    pub async fn get_team(&self, caller: &Caller, name: &str) -> Result<Team> {
        self.store
            .get_team(name)
            .await?
            .filter(|_| self.authz.can_see_team(caller))
            .ok_or_else(|| Error::NotFound(format!("team {name:?} not found")))
    }

    pub async fn list_teams(&self, caller: &Caller, paging: &Paging) -> Result<Page<Team>> {
        if !self.authz.can_see_team(caller) {
            return Ok(Page {
                items: Vec::new(),
                next_cursor: None,
            });
        }
        let request = paging.request()?;
        let rows = self.store.list_teams(&request).await?;
        Ok(page(rows, &request, |t| t.name.clone()))
    }

    pub async fn update_team(
        &self,
        caller: &Caller,
        name: &str,
        if_match: Option<i64>,
        body: TeamUpdate,
    ) -> Result<Team> {
        self.require_team_manager(caller, name).await?;
        let mut errors = Vec::new();
        check_len(&mut errors, "title", body.title.as_ref(), 200);
        check_len(&mut errors, "description", body.description.as_ref(), 10_000);
        finish(errors)?;
        Ok(self.store.update_team(caller.name(), name, if_match, &body).await?)
    }

    pub async fn delete_team(&self, caller: &Caller, name: &str, if_match: Option<i64>) -> Result<()> {
        self.authz.require_admin(caller)?;
        Ok(self.store.delete_team(caller.name(), name, if_match).await?)
    }

    pub async fn add_team_member(&self, caller: &Caller, team: &str, principal: &str) -> Result<Team> {
        self.require_team_manager(caller, team).await?;
        Ok(self.store.add_team_member(caller.name(), team, principal).await?)
    }

    pub async fn remove_team_member(&self, caller: &Caller, team: &str, principal: &str) -> Result<Team> {
        self.require_team_manager(caller, team).await?;
        Ok(self.store.remove_team_member(caller.name(), team, principal).await?)
    }

    /// Admins manage every team; a team's own members manage its membership.
    async fn require_team_manager(&self, caller: &Caller, team: &str) -> Result<()> {
        let found = self.get_team(caller, team).await?;
        if caller.is_admin() || found.members.iter().any(|m| m == caller.name()) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "only platform admins and members of team {team:?} may change it"
            )))
        }
    }
}
