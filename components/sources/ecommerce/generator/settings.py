"""Constants of the simulated e-commerce business: sizes, vocabularies, prices and behaviour knobs."""

from __future__ import annotations

# --- sizes -------------------------------------------------------------------------------------
#: Customers and products at scale 1.0; both scale linearly, with a floor for tiny scales.
BASE_CUSTOMERS = 1000
BASE_PRODUCTS = 150
MIN_CUSTOMERS = 20
MIN_PRODUCTS = 30
#: Products per category that exist before the period starts (every category is always buyable).
MIN_PRODUCTS_PER_CATEGORY_AT_START = 2

# --- argument limits ---------------------------------------------------------------------------
MIN_DAYS = 120
MAX_DIRTY_RATE = 0.5

# --- vocabularies ------------------------------------------------------------------------------
CATEGORIES = ("electronics", "home", "fashion", "beauty", "grocery", "sports")
#: Relative popularity of each category across the customer base.
CATEGORY_POPULARITY = (0.14, 0.17, 0.22, 0.14, 0.2, 0.13)
#: Median list price (cents) and log-normal spread per category.
CATEGORY_PRICE_CENTS = {
    "electronics": (8_900, 0.8),
    "home": (3_900, 0.7),
    "fashion": (3_500, 0.6),
    "beauty": (1_900, 0.5),
    "grocery": (700, 0.5),
    "sports": (3_900, 0.7),
}
#: Mean of the extra units (Poisson) bought on a line, per category.
CATEGORY_EXTRA_UNITS = (0.05, 0.2, 0.25, 0.5, 0.9, 0.2)
CATEGORY_BRANDS = {
    "electronics": ("Voltix", "Nordlicht", "Kestrel", "Ampere"),
    "home": ("Casa Verde", "Hearthstone", "Linnea", "Oakridge"),
    "fashion": ("Maison Brume", "Urban Fable", "Selvedge", "Tessile"),
    "beauty": ("Lumière", "Petal & Co", "Aurora Skin", "Vela"),
    "grocery": ("Green Basket", "Mill & Grain", "Fresca", "Alpine Farm"),
    "sports": ("Stridewell", "Peakform", "Blue Lane", "Kinetic"),
}
CATEGORY_NOUNS = {
    "electronics": ("Headphones", "Speaker", "Charger", "Smartwatch", "Keyboard", "Camera", "Tablet"),
    "home": ("Lamp", "Cushion", "Kettle", "Rug", "Vase", "Pan Set", "Blanket"),
    "fashion": ("Jacket", "Sneakers", "Scarf", "Dress", "Jeans", "Shirt", "Handbag"),
    "beauty": ("Serum", "Lipstick", "Shampoo", "Face Cream", "Perfume", "Body Lotion"),
    "grocery": ("Coffee Beans", "Olive Oil", "Granola", "Green Tea", "Pasta", "Dark Chocolate"),
    "sports": ("Yoga Mat", "Running Shoes", "Dumbbells", "Water Bottle", "Bike Helmet", "Tennis Racket"),
}
PRODUCT_SERIES = ("Classic", "Pro", "Lite", "Max", "Eco", "Plus", "Mini", "Prime")

TIERS = ("bronze", "silver", "gold", "platinum")
#: Trailing spend (cents, non-cancelled orders net of discounts) that earns each tier.
TIER_THRESHOLDS_CENTS = (0, 150_000, 300_000, 550_000)
TIER_WINDOW_DAYS = 180
#: Seconds after midnight on the first of each month when the CRM reviews tiers (plus a per-customer offset).
TIER_REVIEW_SECOND = 3 * 3600

ORDER_STATUSES = ("placed", "shipped", "delivered", "cancelled", "returned")
CHANNELS = ("online", "retail")

#: Customer home cities (city, country, weight). Names are plain title case.
CITIES = (
    ("Berlin", "Germany", 9),
    ("Hamburg", "Germany", 6),
    ("Munich", "Germany", 5),
    ("Cologne", "Germany", 4),
    ("Paris", "France", 8),
    ("Lyon", "France", 4),
    ("Marseille", "France", 3),
    ("Madrid", "Spain", 6),
    ("Barcelona", "Spain", 5),
    ("London", "United Kingdom", 9),
    ("Manchester", "United Kingdom", 5),
    ("Leeds", "United Kingdom", 3),
    ("Amsterdam", "Netherlands", 5),
    ("Rotterdam", "Netherlands", 3),
    ("Milan", "Italy", 4),
    ("Rome", "Italy", 4),
)

#: Stores: (name, city, country, channel, opened, weight). `opened` is days relative to the start when it
#: is an int, or a fraction of the period (a store that opens during it) when it is a float.
STORES = (
    ("Online Store EU", "Amsterdam", "Netherlands", "online", -1400, 1.0),
    ("Online Store UK", "London", "United Kingdom", "online", -1100, 1.0),
    ("Outlet Online", "Berlin", "Germany", "online", 0.35, 0.4),
    ("Berlin Mitte", "Berlin", "Germany", "retail", -1800, 1.0),
    ("Hamburg Hafen", "Hamburg", "Germany", "retail", -1500, 1.0),
    ("Paris Rivoli", "Paris", "France", "retail", -1300, 1.0),
    ("Madrid Centro", "Madrid", "Spain", "retail", -900, 1.0),
    ("Manchester Arndale", "Manchester", "United Kingdom", "retail", -700, 1.0),
)
#: A store refit during the period: (store index, fraction of the period, new name).
STORE_REFIT = (4, 0.55, "Hamburg HafenCity")
#: The online store that serves each country (index into STORES); others use the first one.
ONLINE_STORE_BY_COUNTRY = {"United Kingdom": 1}

FIRST_NAMES = (
    "Anna", "Ben", "Clara", "David", "Elena", "Felix", "Greta", "Hugo", "Ines", "Jonas",
    "Klara", "Leon", "Mia", "Noah", "Olivia", "Paul", "Quentin", "Rosa", "Samuel", "Tara",
    "Ugo", "Vera", "William", "Xenia", "Yusuf", "Zoe", "Lucas", "Emma", "Mateo", "Sofia",
    "Oliver", "Amelia", "Luca", "Giulia", "Louis", "Chloe", "Daan", "Sanne", "Pablo", "Lucia",
)  # fmt: skip
LAST_NAMES = (
    "Schmidt", "Muller", "Schneider", "Fischer", "Weber", "Martin", "Bernard", "Dubois", "Thomas",
    "Robert", "Garcia", "Fernandez", "Lopez", "Martinez", "Smith", "Jones", "Taylor", "Brown",
    "Wilson", "Evans", "De Jong", "Jansen", "Visser", "Bakker", "Rossi", "Russo", "Ferrari",
    "Bianchi", "Romano", "Colombo", "Moreau", "Laurent", "Hoffmann", "Wagner", "Becker", "Walker",
    "Wright", "Sanchez", "Navarro", "Meijer",
)  # fmt: skip
EMAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example.com", "inbox.example.org")

# --- behaviour ---------------------------------------------------------------------------------
#: Share of customers who sign up in the first week; the rest arrive uniformly over the period.
INITIAL_COHORT_SHARE = 0.3
#: Per-customer base daily order rate (log-normal median and spread) and latent engagement.
BASE_DAILY_RATE = 0.05
BASE_RATE_SPREAD = 0.7
ENGAGEMENT_SPREAD = 0.45
ENGAGEMENT_REVERSION = 0.03
ENGAGEMENT_NOISE = 0.06
ENGAGEMENT_DECAY = 0.004
ENGAGEMENT_HABIT = 0.04
ENGAGEMENT_NEW_CUSTOMER = 0.6
ENGAGEMENT_WIN_BACK = 0.5
MAX_DAILY_ORDER_PROB = 0.3
#: Daily hazard of going dormant and its drivers (log-scale coefficients).
DORMANCY_BASE_HAZARD = 0.004
DORMANCY_GAP_COEF = 0.55  # per 30 days since the last order, capped at DORMANCY_GAP_CAP_DAYS
DORMANCY_GAP_CAP_DAYS = 120
DORMANCY_BRONZE_COEF = 0.35
DORMANCY_FOCUS_COEF = 0.9  # times (top category share - 0.5)
DORMANCY_TIER_COEF = 0.3  # per tier rank above bronze
DORMANCY_HISTORY_COEF = 0.25  # per log(1 + orders)
#: Daily chance that a dormant customer comes back (scaled by seasonality).
WIN_BACK_RATE = 0.01
#: Weekly pattern, Monday first, and monthly pattern, January first.
WEEKDAY_FACTOR = (0.92, 0.9, 0.95, 1.0, 1.05, 1.12, 1.06)
MONTH_FACTOR = (0.85, 0.88, 0.95, 0.97, 1.0, 0.95, 0.93, 0.95, 1.0, 1.05, 1.35, 1.55)
#: Relative weight of each hour of the day for order times (UTC).
HOUR_WEIGHTS = (
    0.6, 0.35, 0.2, 0.15, 0.15, 0.25, 0.5, 0.9, 1.2, 1.4, 1.5, 1.6,
    1.7, 1.6, 1.5, 1.5, 1.6, 1.8, 2.0, 2.2, 2.3, 2.0, 1.5, 1.0,
)  # fmt: skip
#: Items per order are 1 + Poisson(mean), capped.
EXTRA_ITEMS_MEAN = 1.5
MAX_ITEMS_PER_ORDER = 8
DISCOUNT_SHARE = 0.25
DISCOUNT_SHARE_PEAK = 0.45  # in November and December
DISCOUNT_RANGE = (0.05, 0.3)
#: Order outcomes.
CANCEL_RATE = 0.04
RETURN_RATE = 0.06
#: Customer profile changes over the whole period (Poisson means, scaled by each customer's tenure).
EMAIL_CHANGES_PER_PERIOD = 0.2
CITY_MOVES_PER_PERIOD = 0.14
#: Product catalogue dynamics.
PRODUCT_LAUNCH_SHARE = 0.15
PRICE_CHANGES_PER_PERIOD = 1.3
PRICE_CHANGE_SPREAD = 0.12
