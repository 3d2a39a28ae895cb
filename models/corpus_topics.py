"""The built-in topics the corpus builder asks SmolLM2 to write about.

Grouped loosely by kind so the corpus covers people, places, animals, science, history,
crafts and everyday scenes; the builder draws from all of them with a seeded shuffle.
"""

from __future__ import annotations

_PEOPLE = """
a lighthouse keeper; a village baker; a retired sea captain; a young violinist; a night-shift nurse;
a beekeeper; a blacksmith; a street musician; a mountain guide; a school librarian; a fisherman;
an astronaut; a firefighter; a travelling salesman; a clockmaker; a shepherd; a lumberjack;
a kindergarten teacher; a detective; a tailor; a gardener; a potter; a long-distance runner;
a chess champion; a farmer at harvest time; a train conductor; a museum guard; a postman;
a chef in a busy kitchen; a war correspondent; a circus acrobat; a marine biologist; a poet;
a carpenter; a taxi driver in the rain; an old woman feeding pigeons; a grandfather telling stories;
a stonemason; a park ranger; a pilot; a jazz pianist; a bookbinder; a deep-sea diver;
Marie Curie; Leonardo da Vinci; Ada Lovelace; Charles Darwin; Cleopatra; Isaac Newton;
Mahatma Gandhi; Amelia Earhart; William Shakespeare; Galileo Galilei; Florence Nightingale;
Nikola Tesla; Frida Kahlo; Wolfgang Amadeus Mozart; Albert Einstein; Joan of Arc;
Genghis Khan; Harriet Tubman; Ludwig van Beethoven; Vincent van Gogh; Jane Austen; Confucius;
Marco Polo; Rosa Parks; Alexander the Great; Queen Victoria; Charles Dickens; Nelson Mandela
"""

_PLACES = """
Paris; Tokyo; the Sahara Desert; the Amazon rainforest; Venice; the Grand Canyon; Iceland;
the Arctic; a small fishing village; a busy train station; an old library; a mountain cabin;
the Great Wall of China; Machu Picchu; a night market; a desert oasis; a coral reef;
the Himalayas; a medieval castle; a lighthouse on a cliff; New York City; a rainy London street;
an abandoned factory; a quiet monastery; a farmers market; a public swimming pool; an airport at dawn;
a volcano; the Nile River; a bamboo forest; the Scottish Highlands; a Mediterranean island;
a small bookshop; a hospital waiting room; a school playground; a crowded beach; a frozen lake;
the Moon; Mars; a space station; a subway car at midnight; a vineyard; a bakery at sunrise;
a city park in autumn; a rice terrace; a mangrove swamp; the Alps; Istanbul; Kyoto; Rome;
Cairo; Rio de Janeiro; a tundra; the Galapagos Islands; a cave full of crystals; a harbour;
a country road; a greenhouse; a museum of natural history; an old cinema; a roadside diner;
a ski resort; a lavender field; a prairie; a canyon river; a waterfall; a cathedral;
a laundromat; a flower shop; a fire station; a village square; a lighthouse island
"""

_ANIMALS = """
honey bees; wolves; elephants; octopuses; owls; dolphins; penguins; foxes; cats; dogs;
horses; tigers; ants; butterflies; whales; crows; bats; frogs; sea turtles; hummingbirds;
giraffes; polar bears; snails; spiders; salmon; eagles; kangaroos; koalas; rabbits; squirrels;
hedgehogs; camels; parrots; jellyfish; sharks; beavers; otters; bison; gorillas; pandas;
chameleons; fireflies; earthworms; swans; seahorses; moles; lions; cheetahs; zebras; hippos;
crocodiles; goats; sheep; chickens; cows; pigs; ducks; geese; peacocks; flamingos;
a lost puppy; a stray cat; migrating birds; a spider spinning its web; an ant colony;
a wasp nest; a herd of reindeer; coral polyps; a hermit crab; a family of ducks
"""

_SCIENCE = """
photosynthesis; black holes; the water cycle; gravity; electricity; magnetism; volcanoes;
earthquakes; the human heart; the brain; DNA; vaccines; climate change; the solar system;
the speed of light; rainbows; tides; clouds; thunderstorms; snowflakes; the immune system;
evolution; plate tectonics; the periodic table; atoms; the Big Bang; stars; comets; the Sun;
the ocean floor; fossils; dinosaurs; bacteria; fungi; sleep; dreams; memory; the human eye;
sound waves; friction; batteries; solar power; wind turbines; nuclear energy; rockets;
computers; the internet; artificial intelligence; robots; smartphones; microscopes;
telescopes; antibiotics; the seasons; the northern lights; glaciers; deserts; rainforests;
soil; seeds; trees; mushrooms; coral reefs; ocean currents; the atmosphere; the ozone layer;
recycling; plastic pollution; bridges; skyscrapers; steam engines; the printing press;
the wheel; clocks; maps; compasses; mathematics; prime numbers; the number zero; chemistry;
the human skeleton; digestion; muscles; the sense of smell; crystals; magnets; lightning
"""

_HISTORY = """
the Roman Empire; ancient Egypt; the pyramids; the Renaissance; the Industrial Revolution;
the Middle Ages; Vikings; the Silk Road; the French Revolution; the American Revolution;
the moon landing; the fall of the Berlin Wall; ancient Greece; the Olympic Games;
the invention of writing; the Stone Age; the Bronze Age; samurai; knights; pirates;
the age of exploration; the printing of the first books; the Black Death; the Aztecs;
the Maya; the Inca; ancient China; the Ottoman Empire; the British Empire; the Cold War;
the first airplanes; the history of chocolate; the history of tea; the history of coffee;
the history of bread; the history of money; the history of the bicycle; the history of music;
the Titanic; the gold rush; the invention of the telephone; the first photographs;
the history of the post; the history of medicine; castles in wartime; the Library of Alexandria;
the building of railways; the history of the calendar; the history of chess; the Hanseatic League
"""

_CRAFTS = """
knitting a scarf; baking bread; making pottery; woodworking; sewing a quilt; painting with watercolours;
gardening; growing tomatoes; making cheese; brewing tea; roasting coffee; making jam;
origami; calligraphy; building a birdhouse; repairing a bicycle; fixing a leaky tap;
learning to swim; learning a new language; playing the guitar; playing the piano; singing in a choir;
photography; birdwatching; fishing; camping; hiking; rock climbing; sailing; surfing;
skiing; ice skating; cycling; running a marathon; yoga; meditation; chess; playing football;
basketball; tennis; cooking pasta; making soup; baking a birthday cake; making pizza;
composting; keeping chickens; beekeeping; carving wood; blacksmithing; glassblowing;
candle making; soap making; weaving a basket; embroidery; restoring old furniture;
writing a letter; keeping a diary; reading a good book; writing poetry; drawing portraits;
building a sandcastle; flying a kite; making a snowman; planting a tree; building a campfire;
stargazing; sculpting clay; bookbinding; making a film; learning to drive; doing a jigsaw puzzle
"""

_SCENES = """
a rainy afternoon; a snowy morning; a summer thunderstorm; a sunset over the sea; a foggy harbour;
breakfast with the family; the first day of school; a birthday party; a wedding; moving house;
a picnic in the park; a long train journey; a road trip; waiting for a bus; a job interview;
a power cut; a lost key; a visit to the dentist; a trip to the zoo; a day at the beach;
grocery shopping; cleaning the house; doing the laundry; walking the dog; a sleepless night;
a family dinner; a village festival; a football match; a school play; a music concert;
a marathon finish line; a crowded café; an old photograph; a handwritten letter; a lost umbrella;
the smell of fresh bread; the sound of rain on the roof; the first snow of winter; autumn leaves;
spring blossoms; a hot summer day; a quiet Sunday morning; a busy Monday; Halloween night;
New Year's Eve; a winter evening by the fire; a thunderstorm at night; a garden after rain;
an empty classroom; a traffic jam; a broken-down car; a lemonade stand; a yard sale;
a night sky full of stars; a full moon; a hospital birth; an old friend returning; a farewell at the station;
a campfire story; a snow day; a treehouse; a kitchen in the morning; a market on Saturday;
a boat on a calm lake; a children's birthday cake; a haunted house; a surprise party
"""

_THINGS = """
friendship; kindness; courage; honesty; patience; happiness; loneliness; hope; curiosity;
gratitude; forgiveness; ambition; creativity; childhood; old age; home; family; music;
art; poetry; libraries; museums; newspapers; television; radio; video games; board games;
social media; cities and villages; public transport; electric cars; trains; ships; bicycles;
umbrellas; pencils; old clocks; mirrors; keys; candles; bread; cheese; apples; chocolate;
coffee; tea; rice; potatoes; honey; salt; spices; olive oil; soup; ice cream; pancakes;
oranges; strawberries; mushrooms in the forest; a wooden table; a leather armchair; a teapot;
a violin; a piano; a telescope; a typewriter; a lantern; a compass; a map of the world;
the colour blue; the colour red; the number seven; silence; time; the wind; the sea; rivers;
mountains; forests; islands; bridges; lighthouses; windmills; castles; gardens; roses;
sunflowers; oak trees; cherry blossoms; cactuses; moss; snow; rain; fog; fire; stones
"""


def _parse(block: str) -> list[str]:
    return [item.strip() for item in block.replace("\n", " ").split(";") if item.strip()]


TOPICS: tuple[str, ...] = tuple(
    dict.fromkeys(
        topic
        for block in (_PEOPLE, _PLACES, _ANIMALS, _SCIENCE, _HISTORY, _CRAFTS, _SCENES, _THINGS)
        for topic in _parse(block)
    )
)
"""Every built-in topic, in a stable order, without duplicates."""
