//! Initialising and indexing inboxes: the I/O around [`crate::plan`].
//! Every inbox is reached through the top level's handle (a path that
//! leaves the top level, or a symlink below it, is refused), and the
//! public-inbox databases are placed through the handle of their own top
//! level when it is separate.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use grokmirror::git::Git;
use grokmirror::lock::{RepoLock, Wait};
use grokmirror::tree::{fsutil, Dir, Kind, Tree};
use tracing::{debug, error, info, warn};

use crate::origins;
use crate::plan::{self, Accept, Indexing};

/// The database public-inbox-init makes; its presence means initialised.
const MSGMAP: &str = "msgmap.sqlite3";
/// The search index a forced re-init drops with it.
const XAPIAN: &str = "xap15";
/// The most epochs an inbox is looked at for.
const MAX_EPOCHS: usize = 100_000;
/// How long init waits for grok-pull or grok-fsck to let go of an epoch.
const LOCK_WAIT: Duration = Duration::from_secs(300);
/// How much of a failing public-inbox program's stderr is quoted.
const QUOTED_STDERR: usize = 1000;

/// What went wrong with one inbox (or with extindex).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A path that is not an inbox below the top level.
    #[error("{} is not an inbox below the top level {}; give .../<inbox> or .../<inbox>/git/<N>.git", path.display(), top.display())]
    Outside {
        /// The path given.
        path: PathBuf,
        /// The top level.
        top: PathBuf,
    },
    /// A path refused by the handles, or a failed file operation.
    #[error(transparent)]
    Tree(#[from] grokmirror::tree::Error),
    /// The origin's config is refused.
    #[error("the inbox config of {inbox} from its origin is refused: {why}")]
    Origins {
        /// The inbox.
        inbox: PathBuf,
        /// What is wrong with it.
        why: plan::Error,
    },
    /// The origin's config could not be had.
    #[error(transparent)]
    Fetch(#[from] origins::Error),
    /// An epoch stayed locked.
    #[error("{} stayed locked by another grokmirror program for {}s; try again later", .0.display(), LOCK_WAIT.as_secs())]
    Busy(PathBuf),
    /// A public-inbox program could not be started.
    #[error("cannot run {program}: {cause}; install public-inbox 1.6 or later and put it on PATH")]
    Spawn {
        /// The program.
        program: String,
        /// Why.
        cause: std::io::Error,
    },
    /// A public-inbox program failed.
    #[error("{program} failed on {} ({status}): {stderr}", inbox.display())]
    Failed {
        /// The program.
        program: String,
        /// The inbox (or the config file, for extindex).
        inbox: PathBuf,
        /// How it ended.
        status: std::process::ExitStatus,
        /// The end of what it said.
        stderr: String,
    },
    /// A file of ours could not be written.
    #[error("cannot write {}: {cause}", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        cause: std::io::Error,
    },
}

/// An inbox found below the top level.
struct Inbox {
    /// Its name (the last component), public-inbox's name for it.
    name: String,
    /// Its path below the top level.
    rel: PathBuf,
    /// The mirrored inbox directory (holding `git/<N>.git`).
    git_dir: Dir,
    /// Where its databases are, as public-inbox is told.
    pi_path: PathBuf,
}

/// A run's settings and handles.
#[derive(Debug)]
pub struct Indexer {
    /// How to run git.
    pub git: Git,
    /// The public-inbox config (PI_CONFIG).
    pub pi_config: PathBuf,
    /// The mirror's top level.
    pub tree: Tree,
    /// The real path of the top level (paths given are compared with it).
    pub real_top: PathBuf,
    /// The separate top level of the databases, when there is one.
    pub pi_top: Option<Dir>,
    /// `-L`, `--jobs`, `--no-fsync`.
    pub indexing: Indexing,
}

/// What `init` is asked to do beyond indexing.
#[derive(Debug, Clone)]
pub struct InitRequest {
    /// What to take from the origin's config.
    pub accept: Accept,
    /// `--local-toplevel`.
    pub local_toplevel: String,
    /// `--origin-hostname`.
    pub origin: String,
    /// `--force-reinit`.
    pub force: bool,
}

impl Indexer {
    fn locate(&self, path: &Path) -> Result<Inbox, Error> {
        let outside = || Error::Outside {
            path: path.to_path_buf(),
            top: self.tree.path().to_path_buf(),
        };
        let real = std::fs::canonicalize(path).map_err(|_| outside())?;
        let rel = plan::relative_below(&self.real_top, &real).ok_or_else(outside)?;
        let name = rel
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(outside)?
            .to_string();
        let git_dir = self.tree.pin(&self.tree.path().join(&rel))?;
        let pi_path = match &self.pi_top {
            Some(top) => top.shown_join(&rel),
            None => git_dir.shown().to_path_buf(),
        };
        Ok(Inbox {
            name,
            rel,
            git_dir,
            pi_path,
        })
    }

    /// The inbox's database directory, made (with its `git` symlink to the
    /// epochs) when `create` is set and the databases live apart.
    fn pi_dir(&self, inbox: &Inbox, create: bool) -> Result<Option<Dir>, Error> {
        let Some(top) = &self.pi_top else {
            return Ok(Some(inbox.git_dir.clone()));
        };
        if !create {
            return match top.open_dir(&inbox.rel) {
                Ok(dir) => Ok(Some(dir)),
                Err(e) if e.is_not_found() => Ok(None),
                Err(e) => Err(e.into()),
            };
        }
        let dir = top.create_dir_all(&inbox.rel)?;
        match dir.kind_of("git")? {
            Some(Kind::Symlink) => {}
            None => dir.symlink(&inbox.git_dir.shown_join("git"), "git".as_ref())?,
            Some(_) => {
                return Err(grokmirror::tree::Error::NotAFile(dir.shown_join("git")).into());
            }
        }
        Ok(Some(dir))
    }

    fn initialised(dir: &Dir) -> bool {
        matches!(dir.kind_of(MSGMAP), Ok(Some(Kind::File)))
    }

    /// The epochs `git/0.git`, `git/1.git`, ... up to the first gap.
    fn epochs(inbox: &Inbox) -> Vec<PathBuf> {
        let Ok(git) = inbox.git_dir.open_dir("git") else {
            return Vec::new();
        };
        (0..MAX_EPOCHS)
            .map(|n| format!("{n}.git"))
            .take_while(|name| matches!(git.kind_of(name), Ok(Some(Kind::Dir))))
            .map(|name| git.shown_join(name))
            .collect()
    }

    /// Initialise (where needed) and index each inbox; the number that
    /// failed.
    pub fn init(&self, inboxes: &[PathBuf], request: &InitRequest) -> usize {
        let mut failed = 0;
        let mut to_index = Vec::new();
        for path in inboxes {
            match self.init_one(path, request) {
                Ok(Some(inbox)) => to_index.push(inbox),
                Ok(None) => {}
                Err(e) => {
                    error!("Could not init {}: {e}", path.display());
                    failed += 1;
                }
            }
        }
        for inbox in to_index {
            if let Err(e) = self.index(&inbox) {
                error!(
                    "Unable to index public-inbox repo {}: {e}",
                    inbox.pi_path.display()
                );
                failed += 1;
            }
        }
        failed
    }

    fn init_one(&self, path: &Path, request: &InitRequest) -> Result<Option<Inbox>, Error> {
        let inbox = self.locate(path)?;
        let dir = self
            .pi_dir(&inbox, true)?
            .expect("made when asked to create");
        if request.force {
            warn!("Reinitializing {}", inbox.pi_path.display());
            if Self::initialised(&dir) {
                dir.remove_file(MSGMAP.as_ref())?;
            }
            if dir.kind_of(XAPIAN)?.is_some() {
                dir.remove_tree(XAPIAN.as_ref())?;
            }
        } else if Self::initialised(&dir) {
            debug!("{} is initialised already", inbox.pi_path.display());
            return Ok(Some(inbox));
        }
        info!("pi-init  {}", inbox.git_dir.shown().display());
        let epochs = Self::epochs(&inbox);
        // grok-pull must not fetch into the epochs while the inbox is set
        // up from what they hold.
        let _locks = self.lock_all(&epochs)?;
        let found = match origins::from_epochs(&self.git, &epochs)? {
            Some(text) => Some(text),
            None => match plan::config_url(&request.origin, &inbox.name) {
                Some(url) => Some(origins::from_http(&url)?),
                None => {
                    info!("no origin config for {}; using defaults", inbox.name);
                    None
                }
            },
        };
        let settings = plan::inbox_settings(&inbox.name, found.as_deref(), &request.accept)
            .map_err(|why| Error::Origins {
                inbox: inbox.git_dir.shown().to_path_buf(),
                why,
            })?;
        let url = plan::local_url(&request.local_toplevel, &inbox.name);
        let argv = self
            .indexing
            .init_argv(&inbox.name, &inbox.pi_path, &url, &settings);
        self.public_inbox(&argv, &inbox.pi_path)?;
        let description = dir.io_path().join("description");
        fsutil::write_atomic(
            &description,
            format!("{}\n", settings.description).as_bytes(),
        )
        .map_err(|cause| Error::Write {
            path: dir.shown_join("description"),
            cause,
        })?;
        Ok(Self::initialised(&dir).then_some(inbox))
    }

    fn lock_all(&self, epochs: &[PathBuf]) -> Result<Vec<RepoLock>, Error> {
        let mut locks = Vec::new();
        for epoch in epochs {
            match self.tree.lock_repo(epoch, Wait::UpTo(LOCK_WAIT)) {
                Ok(Some(lock)) => locks.push(lock),
                Ok(None) | Err(_) => return Err(Error::Busy(epoch.clone())),
            }
        }
        Ok(locks)
    }

    /// Index the inbox of an epoch grok-pull just fetched into; false when
    /// it failed.
    pub fn update(&self, path: &Path) -> bool {
        let indexed = self
            .locate(path)
            .and_then(|inbox| match self.pi_dir(&inbox, false)? {
                Some(dir) if Self::initialised(&dir) => self.index(&inbox),
                _ => {
                    info!("Inboxdir not initialized: {}", inbox.pi_path.display());
                    Ok(())
                }
            });
        match indexed {
            Ok(()) => true,
            Err(e) => {
                error!("Unable to index public-inbox repo {}: {e}", path.display());
                false
            }
        }
    }

    fn index(&self, inbox: &Inbox) -> Result<(), Error> {
        info!("pi-index {}", inbox.git_dir.shown().display());
        self.public_inbox(&self.indexing.index_argv(&inbox.pi_path), &inbox.pi_path)
    }

    /// Update the external indexes; false when it failed.
    pub fn extindex(&self) -> bool {
        info!("Running extindex --all");
        match self.public_inbox(&self.indexing.extindex_argv(), &self.pi_config) {
            Ok(()) => true,
            Err(e) => {
                error!("Unable to run public-inbox-extindex: {e}");
                false
            }
        }
    }

    /// Run a public-inbox program with our PI_CONFIG; `about` names what it
    /// works on, for the error.
    fn public_inbox(&self, argv: &[OsString], about: &Path) -> Result<(), Error> {
        let program = argv[0].to_string_lossy().into_owned();
        debug!("running {argv:?}");
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .env("PI_CONFIG", &self.pi_config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // A hook inherits grok-pull's environment; public-inbox runs git
        // on the inbox's own repositories, never on one these name.
        for var in [
            "GIT_DIR",
            "GIT_WORK_TREE",
            "GIT_INDEX_FILE",
            "GIT_OBJECT_DIRECTORY",
        ] {
            cmd.env_remove(var);
        }
        let out = cmd.output().map_err(|cause| Error::Spawn {
            program: program.clone(),
            cause,
        })?;
        if out.status.success() {
            return Ok(());
        }
        Err(Error::Failed {
            program,
            inbox: about.to_path_buf(),
            status: out.status,
            stderr: tail(&out.stderr),
        })
    }
}

/// The end of a program's stderr, on one line.
fn tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    grokmirror::formats::last_at_most(&text, QUOTED_STDERR).to_string()
}
