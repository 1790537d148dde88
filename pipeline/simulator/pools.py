"""Vocabulary of the simulated company: services, tables, repositories, people, hosts.

Plain data, no logic. Each agent draws a small *focus* subset of some pools when it is created (an
SRE agent looks after a few services, an analyst queries a few tables), which gives every agent its
own habits for the per-agent baselines to learn; it still strays outside its focus now and then.

Hosts and domains an attacker uses are under reserved names (``.example``, RFC 5737 addresses) so
simulated traffic can never point at someone's real server.
"""

from __future__ import annotations

SERVICES = (
    "checkout", "payments-api", "auth", "search", "inventory", "notifications", "gateway",
    "orders", "billing-worker", "recommendations", "media-resizer", "ledger", "user-profile",
    "cart", "shipping", "fraud-scorer", "email-relay", "reporting", "session-store",
    "feature-flags", "pricing", "catalog", "webhooks", "audit-log",
)

NAMESPACES = (
    "prod", "staging", "payments", "platform", "data", "edge", "monitoring", "ingress-nginx",
    "checkout", "identity",
)

SYSTEMD_UNITS = (
    "nginx", "postgresql", "redis-server", "docker", "kubelet", "containerd", "node-exporter",
    "fluent-bit", "haproxy", "chronyd", "pgbouncer", "envoy",
)

BUCKETS = (
    "acme-app-logs", "acme-backups-eu", "acme-static-assets", "acme-terraform-state",
    "acme-data-lake-raw", "acme-ml-artifacts", "acme-release-artifacts",
)

TERRAFORM_MODULES = (
    "vpc", "eks_cluster", "rds_orders", "redis_sessions", "cdn", "iam_roles", "s3_logs",
    "alb_gateway", "msk_cluster", "dns", "waf", "bastion",
)

DATABASES = ("orders-db", "payments-db", "auth-db", "analytics-db", "inventory-db", "ledger-db")

METRICS = (
    "http_requests_total", "http_request_duration_seconds", "process_resident_memory_bytes",
    "go_goroutines", "queue_depth", "db_pool_in_use", "cache_hit_ratio", "errors_total",
)

DURATIONS = ("5m", "10m", "15m", "30m", "1h", "2h", "6h")

# tables an analyst queries; the sensitive ones (customers, payments, users, accounts) are only
# touched through aggregates or small limits by benign agents
TABLES = (
    "orders", "order_items", "products", "web_sessions", "page_views", "marketing_campaigns",
    "subscriptions", "invoices", "support_tickets", "inventory_levels", "shipments", "refunds",
    "experiments", "feature_usage", "customers", "payments",
)

TIME_COLUMNS = {
    "orders": "created_at", "order_items": "created_at", "products": "updated_at",
    "web_sessions": "started_at", "page_views": "viewed_at", "marketing_campaigns": "launched_at",
    "subscriptions": "started_at", "invoices": "issued_at", "support_tickets": "opened_at",
    "inventory_levels": "snapshot_at", "shipments": "shipped_at", "refunds": "requested_at",
    "experiments": "started_at", "feature_usage": "used_at", "customers": "signed_up_at",
    "payments": "captured_at",
}

DIMENSIONS = {
    "orders": ("status", "channel", "country", "currency", "payment_method"),
    "order_items": ("product_id", "category", "warehouse"),
    "products": ("category", "brand", "supplier_id"),
    "web_sessions": ("device", "country", "browser", "utm_source"),
    "page_views": ("path", "device", "referrer_domain"),
    "marketing_campaigns": ("channel", "objective", "region"),
    "subscriptions": ("plan", "billing_period", "country"),
    "invoices": ("status", "currency", "plan"),
    "support_tickets": ("priority", "category", "channel", "team"),
    "inventory_levels": ("warehouse", "sku_class"),
    "shipments": ("carrier", "warehouse", "destination_country"),
    "refunds": ("reason", "channel", "currency"),
    "experiments": ("variant", "experiment_key"),
    "feature_usage": ("feature", "plan", "client"),
    "customers": ("country", "segment", "acquisition_channel"),
    "payments": ("method", "currency", "status"),
}

MEASURES = {
    "orders": ("total_amount", "discount_amount", "item_count"),
    "order_items": ("price", "quantity"),
    "products": ("list_price", "stock"),
    "web_sessions": ("duration_s", "pages"),
    "page_views": ("load_ms",),
    "marketing_campaigns": ("spend", "impressions", "clicks"),
    "subscriptions": ("mrr",),
    "invoices": ("amount_due", "amount_paid"),
    "support_tickets": ("first_response_min", "resolution_hours"),
    "inventory_levels": ("on_hand", "reserved"),
    "shipments": ("weight_kg", "transit_days"),
    "refunds": ("amount",),
    "experiments": ("conversion",),
    "feature_usage": ("events",),
    "customers": ("lifetime_value",),
    "payments": ("amount", "fee"),
}

SENSITIVE_TABLES = ("customers", "payments", "users", "accounts", "credentials")

MATERIALIZED_VIEWS = (
    "reporting.daily_revenue", "reporting.weekly_active_users", "reporting.funnel_daily",
    "reporting.churn_monthly", "reporting.inventory_snapshot", "reporting.campaign_roi",
)

REPOS = (
    "web-frontend", "payments-api", "infra-modules", "data-pipelines", "mobile-app",
    "auth-service", "internal-tools", "search-indexer", "design-system", "billing-worker",
)

PY_MODULES = (
    "api", "models", "services", "handlers", "utils", "db", "schemas", "tasks", "auth",
    "billing", "notifications", "config", "cli", "reports",
)

PY_FILES = (
    "views.py", "models.py", "serializers.py", "client.py", "retry.py", "validators.py",
    "queries.py", "cache.py", "events.py", "pagination.py", "errors.py", "settings.py",
    "webhooks.py", "tasks.py", "permissions.py",
)

TS_COMPONENTS = (
    "CheckoutForm", "CartDrawer", "ProductCard", "SearchBar", "OrderHistory", "LoginPage",
    "PaymentMethods", "AddressForm", "Header", "Footer", "Modal", "Toast", "PricingTable",
)

PY_PACKAGES = (
    ("requests", "2.32.3"), ("httpx", "0.27.2"), ("pydantic", "2.9.2"), ("sqlalchemy", "2.0.36"),
    ("pytest", "8.3.3"), ("ruff", "0.7.1"), ("boto3", "1.35.54"), ("celery", "5.4.0"),
    ("fastapi", "0.115.4"), ("numpy", "2.1.3"), ("pandas", "2.2.3"), ("structlog", "24.4.0"),
    ("tenacity", "9.0.0"), ("orjson", "3.10.11"), ("alembic", "1.14.0"), ("redis", "5.2.0"),
)

NPM_PACKAGES = (
    ("react", "18.3.1"), ("zod", "3.23.8"), ("vitest", "2.1.4"), ("date-fns", "4.1.0"),
    ("@tanstack/react-query", "5.59.16"), ("eslint", "9.14.0"), ("typescript", "5.6.3"),
    ("axios", "1.7.7"), ("clsx", "2.1.1"),
)

COMMIT_VERBS = ("fix", "add", "refactor", "handle", "update", "remove", "rename", "document", "test")
COMMIT_OBJECTS = (
    "retry on 503 from payments", "pagination for order history", "null currency in invoices",
    "flaky checkout test", "timeout handling in client", "webhook signature check",
    "cache invalidation on price change", "logging of request ids", "dead code in utils",
    "validation of postal codes", "rate limit headers", "typing in serializers",
    "empty cart edge case", "migration for refunds table", "docs for local setup",
)

FIRST_NAMES = (
    "maria", "james", "li", "fatima", "lukas", "sofia", "noah", "amara", "kenji", "elena",
    "omar", "chloe", "ravi", "ingrid", "diego", "hana", "samuel", "aisha", "tomas", "priya",
    "mateo", "yuki", "olga", "kwame", "lea", "ahmed", "nina", "pablo", "sara", "viktor",
    "grace", "arjun", "emma", "felix", "zara", "ivan", "mia", "hugo", "leila", "oscar",
)

LAST_NAMES = (
    "schmidt", "okafor", "wang", "garcia", "novak", "rossi", "kim", "haddad", "tanaka",
    "petrov", "silva", "murphy", "dubois", "jensen", "kowalski", "nguyen", "mendes", "fischer",
    "ali", "larsen", "moreau", "costa", "berg", "shah", "ito", "weber", "lopez", "brown",
    "smith", "mueller", "andersen", "ivanova", "sato", "cohen", "singh", "martin", "khan",
    "olsen", "romero", "walker",
)

CUSTOMER_DOMAINS = (
    "gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "gmx.de", "web.de",
    "hotmail.co.uk", "orange.fr", "libero.it", "northwind-traders.example", "contoso.example",
    "fabrikam.example", "tailspin.example", "wideworld.example",
)

KB_QUERIES = (
    "refund policy damaged item", "change shipping address after order", "reset password link expired",
    "cancel subscription mid cycle", "invoice vat number missing", "order stuck in processing",
    "promo code not applied", "duplicate charge card", "delivery marked delivered not received",
    "update payment method", "export invoices pdf", "account locked two factor",
    "return label printing", "warranty claim electronics", "international shipping customs fees",
    "gift card balance", "subscription downgrade proration", "partial refund shipping cost",
)

TICKET_SUBJECTS = (
    "Where is my order", "Refund request", "Charged twice", "Cannot log in", "Wrong item received",
    "Change delivery address", "Cancel my subscription", "Invoice needed for my company",
    "Promo code does not work", "Package damaged", "Update billing details", "Missing item in box",
)

EMAIL_TEMPLATES = (
    "order_status", "refund_confirmation", "password_reset_help", "shipping_update",
    "invoice_copy", "apology_voucher", "subscription_cancelled", "address_change_confirmed",
    "return_instructions", "ticket_resolved",
)

SUPPORT_TEAMS = ("billing", "logistics", "tier2", "fraud", "accounts", "returns")

DOC_URLS = (
    "https://docs.python.org/3/library/{py}.html", "https://pypi.org/pypi/{pkg}/json",
    "https://api.github.com/repos/{org}/{proj}/issues?state=open&per_page=50",
    "https://api.github.com/repos/{org}/{proj}/releases/latest",
    "https://en.wikipedia.org/wiki/{wiki}", "https://arxiv.org/abs/24{m:02d}.{n:05d}",
    "https://stackoverflow.com/questions/{so}", "https://kubernetes.io/docs/concepts/{k8s}/",
    "https://registry.npmjs.org/{npm}", "https://www.postgresql.org/docs/16/{pg}.html",
    "https://api.github.com/search/issues?q={wiki}+repo:{org}/{proj}",
    "https://pypi.org/project/{pkg}/#history", "https://github.com/{org}/{proj}/blob/main/CHANGELOG.md",
    "https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/{status}",
    "https://datatracker.ietf.org/doc/html/rfc{rfc}",
)

PY_STDLIB = (
    "asyncio", "functools", "itertools", "dataclasses", "pathlib", "subprocess", "logging",
    "typing", "json", "datetime", "collections", "concurrent.futures", "contextlib", "sqlite3",
)

GITHUB_PROJECTS = (
    ("psf", "requests"), ("pallets", "flask"), ("tiangolo", "fastapi"), ("kubernetes", "kubernetes"),
    ("apache", "kafka"), ("python", "cpython"), ("pydantic", "pydantic"), ("facebook", "react"),
    ("hashicorp", "terraform"), ("grafana", "grafana"), ("open-telemetry", "opentelemetry-python"),
)

WIKI_TOPICS = (
    "Exponential_backoff", "Bloom_filter", "Consistent_hashing", "ISO_4217", "Value-added_tax",
    "Levenshtein_distance", "Two-phase_commit_protocol", "Cohort_analysis", "A/B_testing",
    "Kalman_filter", "Little%27s_law", "Zipf%27s_law",
)

K8S_TOPICS = (
    "workloads/pods", "services-networking/ingress", "configuration/secret",
    "scheduling-eviction/taint-and-toleration", "workloads/controllers/deployment",
    "storage/persistent-volumes", "security/pod-security-standards",
)

PG_TOPICS = (
    "sql-createindex", "functions-datetime", "queries-with", "tutorial-window",
    "sql-explain", "datatype-json", "indexes-partial", "mvcc-intro",
)

SEARCH_QUERIES = (
    "kafka consumer lag alerting best practice", "postgres partial index vs filtered index",
    "python asyncio cancel shielded task", "react query stale time vs cache time",
    "kubernetes pod disruption budget example", "terraform import existing s3 bucket",
    "vat rules digital services eu 2026", "how to compute cohort retention sql",
    "exponential backoff jitter formula", "redis eviction policy allkeys-lru",
    "stripe webhook retry schedule", "gdpr data retention customer support emails",
)

BLOCKED_SITES = (
    "https://pastebin.com/raw/{hex}", "https://gist.githubusercontent.com/anon/{hex}/raw",
    "https://file.io/{hex}", "https://temp.sh/{hex}",
)

# attacker infrastructure: reserved names and documentation addresses only (RFC 2606, RFC 5737)
EXFIL_HOSTS = (
    "files.sync-backup.example", "cdn-upload.drop-share.example", "203.0.113.47",
    "198.51.100.23", "transfer.quickfiles.example",
)
EXFIL_MAILBOXES = (
    "archive.backup2291@proton.me", "data.drop.77@mailbox.example", "offsite-copy@tutanota.example",
)
